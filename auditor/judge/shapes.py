"""The declared shape of every built-in probe's value (the evidence a check may read).

This module is the source of truth: scripts/evidence_schemas.py derives the JSON Schema files
shipped in auditor/schemas/evidence/ and docs/evidence.md from it, and tests/unit/test_evidence_shapes.py
fails when they disagree. Every key is optional (a probe that cannot see a fact leaves it out) and
scalar facts may be null; what the shape pins is each key's name and type, so that a key renamed or
retyped in a probe fails when the audit saves its evidence and `evaluate` refuses a file recorded in
another shape, naming the probe and the field. Mappings whose keys are data (a user's registry
config, HTTP headers, per-interface addresses) stay `dict[str, ...]`. Checks read these types:
`ev.typed("config.nginx", ConfigNginx)`.

Pure: typing only (checks import it; see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any, TypedDict


class AuthAnonymousCatalogWalk(TypedDict, total=False):
    ok: bool | None
    open_registry: bool | None

class AuthAnonymousReference(TypedDict, total=False):
    repository: str | None
    source: str | None
    tag: str | None

class AuthAnonymousRequestChallenge(TypedDict, total=False):
    params: dict[str, Any]
    scheme: str | None

class AuthAnonymousRequest(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[AuthAnonymousRequestChallenge]
    headers: dict[str, Any]
    http_version: str | None
    method: str | None
    path: str | None
    redirects_followed: float | None
    status: int | None

class AuthAnonymous(TypedDict, total=False):
    catalog_walk: AuthAnonymousCatalogWalk
    credentials_given: bool | None
    reference: AuthAnonymousReference
    requests: list[AuthAnonymousRequest]
    url: str | None

class AuthPlaintextAddress(TypedDict, total=False):
    address: str | None
    family: str | None

class AuthPlaintextEndpointHttp(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[Any]
    headers: dict[str, Any]
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class AuthPlaintextEndpoint(TypedDict, total=False):
    address: str | None
    attempts: float | None
    detail: str | None
    family: str | None
    http: AuthPlaintextEndpointHttp
    port: int | None
    rtt_ms: float | None
    rtt_samples: float | None
    seconds: float | None
    state: str | None
    timeouts_ms: list[Any]

class AuthPlaintext(TypedDict, total=False):
    addresses: list[AuthPlaintextAddress]
    endpoints: list[AuthPlaintextEndpoint]
    host: str | None
    ports: list[float]

class ConfigApacheApache2ctlAgrees(TypedDict, total=False):
    files_agree: bool | None
    files_only_apache_read: list[Any]
    files_only_parser_read: list[Any]
    vhost_known_to_apache: bool | None

class ConfigApacheAuthUserFile(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    is_file: bool | None
    mode: str | None
    path: str | None
    size: int | None
    uid: int | None

class ConfigApacheCipherExpansionSuite(TypedDict, total=False):
    au: str | None
    enc: str | None
    kx: str | None
    mac: str | None
    name: str | None
    protocol: str | None

class ConfigApacheCipherExpansion(TypedDict, total=False):
    string: str | None
    suites: list[ConfigApacheCipherExpansionSuite]
    tool: str | None

class ConfigApacheFile(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    is_file: bool | None
    mode: str | None
    path: str | None
    size: int | None
    uid: int | None

class ConfigApacheRegistryAddress(TypedDict, total=False):
    also: list[Any]
    host: str | None
    port: int | None
    source: str | None

class ConfigApacheV2AccessAuthBasicProvider(TypedDict, total=False):
    value: Any
    where: Any

class ConfigApacheV2AccessAuthName(TypedDict, total=False):
    value: str | None
    where: str | None

class ConfigApacheV2AccessAuthType(TypedDict, total=False):
    value: str | None
    where: str | None

class ConfigApacheV2AccessAuthUserFile(TypedDict, total=False):
    value: str | None
    where: str | None

class ConfigApacheV2AccessLimitRequestBody(TypedDict, total=False):
    value: str | None
    where: str | None

ConfigApacheV2AccessRequire = TypedDict("ConfigApacheV2AccessRequire", {
    "from": str | None,
    "rules": list[Any],
}, total=False)

class ConfigApacheV2Access(TypedDict, total=False):
    auth_basic_provider: ConfigApacheV2AccessAuthBasicProvider
    auth_name: ConfigApacheV2AccessAuthName
    auth_type: ConfigApacheV2AccessAuthType
    auth_user_file: ConfigApacheV2AccessAuthUserFile
    limit_request_body: ConfigApacheV2AccessLimitRequestBody
    require: ConfigApacheV2AccessRequire
    sections: list[str]
    uri: str | None

class ConfigApacheV2AccessByUriItemAuthBasicProvider(TypedDict, total=False):
    value: Any
    where: Any

class ConfigApacheV2AccessByUriItemAuthName(TypedDict, total=False):
    value: str | None
    where: str | None

class ConfigApacheV2AccessByUriItemAuthType(TypedDict, total=False):
    value: str | None
    where: str | None

class ConfigApacheV2AccessByUriItemAuthUserFile(TypedDict, total=False):
    value: str | None
    where: str | None

class ConfigApacheV2AccessByUriItemLimitRequestBody(TypedDict, total=False):
    value: str | None
    where: str | None

ConfigApacheV2AccessByUriItemRequire = TypedDict("ConfigApacheV2AccessByUriItemRequire", {
    "from": str | None,
    "rules": list[Any],
}, total=False)

class ConfigApacheV2AccessByUriItem(TypedDict, total=False):
    auth_basic_provider: ConfigApacheV2AccessByUriItemAuthBasicProvider
    auth_name: ConfigApacheV2AccessByUriItemAuthName
    auth_type: ConfigApacheV2AccessByUriItemAuthType
    auth_user_file: ConfigApacheV2AccessByUriItemAuthUserFile
    limit_request_body: ConfigApacheV2AccessByUriItemLimitRequestBody
    require: ConfigApacheV2AccessByUriItemRequire
    sections: list[str]
    uri: str | None

class ConfigApacheVhostProxyAddHeaders(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: Any

class ConfigApacheVhostProxyPas(TypedDict, total=False):
    flags: list[str]
    in_location: Any
    level: str | None
    path: str | None
    url: str | None
    where: str | None

class ConfigApacheVhostProxyPassReverseItem(TypedDict, total=False):
    args: list[str]
    level: str | None
    where: str | None

class ConfigApacheVhostProxyPreserveHost(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: Any

class ConfigApacheVhostProxyTimeout(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: str | None

class ConfigApacheVhostRequestHeader(TypedDict, total=False):
    args: list[str]
    level: str | None
    where: str | None

class ConfigApacheVhostResponseHeader(TypedDict, total=False):
    args: list[str]
    level: str | None
    where: str | None

class ConfigApacheVhostSslCipherSuite(TypedDict, total=False):
    level: str | None
    value: str | None
    where: str | None

class ConfigApacheVhostSslEngine(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: str | None

class ConfigApacheVhostSslHonorCipherOrder(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: Any

class ConfigApacheVhostSslProtocol(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: str | None

class ConfigApacheVhostV2ProxyPass(TypedDict, total=False):
    flags: list[str]
    in_location: Any
    level: str | None
    path: str | None
    url: str | None
    where: str | None

class ConfigApacheVhost(TypedDict, total=False):
    addresses: list[str]
    limit_request_body_default: float | None
    proxy_add_headers: ConfigApacheVhostProxyAddHeaders
    proxy_pass: list[ConfigApacheVhostProxyPas]
    proxy_pass_reverse: list[ConfigApacheVhostProxyPassReverseItem]
    proxy_preserve_host: ConfigApacheVhostProxyPreserveHost
    proxy_timeout: ConfigApacheVhostProxyTimeout
    request_headers: list[ConfigApacheVhostRequestHeader]
    response_headers: list[ConfigApacheVhostResponseHeader]
    server_aliases: list[Any]
    server_name: str | None
    ssl_certificate_file: list[str]
    ssl_certificate_key_file: list[str]
    ssl_cipher_suite: ConfigApacheVhostSslCipherSuite
    ssl_cipher_suite_tls13: Any
    ssl_engine: ConfigApacheVhostSslEngine
    ssl_honor_cipher_order: ConfigApacheVhostSslHonorCipherOrder
    ssl_openssl_conf_cmd: list[Any]
    ssl_protocol: ConfigApacheVhostSslProtocol
    v2_proxy_pass: ConfigApacheVhostV2ProxyPass
    v2_upstream_loopback: bool | None
    where: str | None

class ConfigApacheVhostItem(TypedDict, total=False):
    addresses: list[str]
    on_port_443: bool | None
    server_aliases: list[Any]
    server_name: str | None
    where: str | None

class ConfigApache(TypedDict, total=False):
    apache2ctl: dict[str, Any]
    apache2ctl_agrees: ConfigApacheApache2ctlAgrees
    auth_user_file: ConfigApacheAuthUserFile
    cipher_expansion: ConfigApacheCipherExpansion
    defines: list[str]
    errors: list[Any]
    files: list[ConfigApacheFile]
    listen: list[str]
    modules: list[str]
    path: str | None
    pid: int | None
    registry_address: ConfigApacheRegistryAddress
    running: bool | None
    selection: str | None
    server_root: str | None
    skipped_sections: list[str]
    source: str | None
    target_host: str | None
    target_port: int | None
    v2_access: ConfigApacheV2Access
    v2_access_by_uri: list[ConfigApacheV2AccessByUriItem]
    vhost: ConfigApacheVhost
    vhosts: list[ConfigApacheVhostItem]

class ConfigNginxBuild(TypedDict, total=False):
    client_body_temp_path: str | None
    proxy_temp_path: str | None
    source: str | None
    version: str | None

class ConfigNginxFile(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    is_file: bool | None
    mode: str | None
    path: str | None
    size: int | None
    uid: int | None

class ConfigNginxRegistryAddress(TypedDict, total=False):
    also: list[Any]
    host: str | None
    port: int | None
    source: str | None

class ConfigNginxRegistryServerAddHeader(TypedDict, total=False):
    headers: list[Any]
    level: str | None

ConfigNginxRegistryServerAuthByUriItem = TypedDict("ConfigNginxRegistryServerAuthByUriItem", {
    "access": dict[str, Any],
    "auth_basic": dict[str, Any],
    "auth_basic_user_file": dict[str, Any],
    "auth_request": dict[str, Any],
    "limit_except": list[Any],
    "location": dict[str, Any],
    "proxy_pass": str | None,
    "return": Any,
    "satisfy": dict[str, Any],
    "to_registry": bool | None,
    "uri": str | None,
}, total=False)

class ConfigNginxRegistryServerDirectives(TypedDict, total=False):
    auth_basic: dict[str, Any]
    auth_request: dict[str, Any]
    chunked_transfer_encoding: dict[str, Any]
    client_body_temp_path: dict[str, Any]
    client_body_timeout: dict[str, Any]
    client_max_body_size: dict[str, Any]
    proxy_buffer_size: dict[str, Any]
    proxy_buffering: dict[str, Any]
    proxy_buffers: dict[str, Any]
    proxy_busy_buffers_size: dict[str, Any]
    proxy_connect_timeout: dict[str, Any]
    proxy_http_version: dict[str, Any]
    proxy_max_temp_file_size: dict[str, Any]
    proxy_read_timeout: dict[str, Any]
    proxy_request_buffering: dict[str, Any]
    proxy_send_timeout: dict[str, Any]
    proxy_temp_file_write_size: dict[str, Any]
    proxy_temp_path: dict[str, Any]
    satisfy: dict[str, Any]
    ssl_ciphers: dict[str, Any]
    ssl_protocols: dict[str, Any]

class ConfigNginxRegistryServerListenItem(TypedDict, total=False):
    address: str | None
    loopback: bool | None
    port: int | None
    raw: str | None
    ssl: bool | None
    unix: bool | None

class ConfigNginxRegistryServerLocation(TypedDict, total=False):
    match: str | None
    where: str | None

class ConfigNginxRegistryServerProxyPass(TypedDict, total=False):
    resolved_by: str | None
    targets: list[str]
    to_registry: bool | None
    url: str | None

class ConfigNginxRegistryServerProxySetHeader(TypedDict, total=False):
    headers: list[Any]
    level: str | None

class ConfigNginxRegistryServerTls(TypedDict, total=False):
    cipher_expansion: dict[str, Any]
    plaintext_listeners: list[str]
    ssl_ciphers: dict[str, Any]
    ssl_conf_command: list[Any]
    ssl_listeners: list[Any]
    ssl_prefer_server_ciphers: dict[str, Any]
    ssl_protocols: dict[str, Any]

class ConfigNginxRegistryServer(TypedDict, total=False):
    add_header: ConfigNginxRegistryServerAddHeader
    all_sample_uris_same_location: bool | None
    auth_basic_user_files: list[Any]
    auth_by_uri: list[ConfigNginxRegistryServerAuthByUriItem]
    directives: ConfigNginxRegistryServerDirectives
    listen: list[ConfigNginxRegistryServerListenItem]
    location: ConfigNginxRegistryServerLocation
    plaintext_public_listeners: list[Any]
    proxy_pass: ConfigNginxRegistryServerProxyPass
    proxy_set_header: ConfigNginxRegistryServerProxySetHeader
    server_names: list[str]
    ssl_certificate: list[Any]
    ssl_certificate_key: list[Any]
    tls: ConfigNginxRegistryServerTls
    where: str | None

class ConfigNginx(TypedDict, total=False):
    auth_user_files: list[Any]
    build: ConfigNginxBuild
    client_body_temp_path: str | None
    errors: list[Any]
    files: list[ConfigNginxFile]
    http_block: bool | None
    maps: list[Any]
    method: str | None
    nginx_t_error: Any
    other_servers: list[Any]
    path: str | None
    pid: int | None
    plaintext_v2_listeners: list[Any]
    prefix: str | None
    proxy_temp_path: str | None
    registry_address: ConfigNginxRegistryAddress
    registry_servers: list[ConfigNginxRegistryServer]
    running: bool | None
    source: str | None
    temp_paths: list[str]
    upstreams: dict[str, Any]

class ConfigRegistryFile(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    is_file: bool | None
    mode: str | None
    path: str | None
    size: int | None
    uid: int | None

class ConfigRegistry(TypedDict, total=False):
    config: dict[str, Any]
    file: ConfigRegistryFile
    path: str | None
    source: str | None

class FilesStatConfig(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    group: str | None
    is_dir: bool | None
    is_file: bool | None
    mode: str | None
    owner: str | None
    path: str | None
    realpath: Any
    size: int | None
    source: str | None
    symlink: bool | None
    uid: int | None

class FilesStatHtpasswdItemEntrie(TypedDict, total=False):
    line: int | None
    scheme: str | None
    user: str | None

class FilesStatHtpasswdItem(TypedDict, total=False):
    entries: list[FilesStatHtpasswdItemEntrie]
    exists: bool | None
    gid: int | None
    group: str | None
    is_dir: bool | None
    is_file: bool | None
    mode: str | None
    owner: str | None
    path: str | None
    realpath: Any
    size: int | None
    source: str | None
    symlink: bool | None
    uid: int | None

class FilesStatTlsKey(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    group: str | None
    is_dir: bool | None
    is_file: bool | None
    mode: str | None
    owner: str | None
    path: str | None
    realpath: Any
    size: int | None
    source: str | None
    symlink: bool | None
    uid: int | None

class FilesStat(TypedDict, total=False):
    configs: list[FilesStatConfig]
    htpasswd: list[FilesStatHtpasswdItem]
    sources: list[str]
    sources_unavailable: dict[str, Any]
    tls_keys: list[FilesStatTlsKey]

class HostDiscoveryApache(TypedDict, total=False):
    argv: list[str]
    cmdline: str | None
    config: str | None
    config_source: str | None
    defines: list[str]
    env: dict[str, str | None]
    env_source: str | None
    exe: str | None
    netns: str | None
    pid: int | None
    server_root: str | None

class HostDiscoveryApacheAllItem(TypedDict, total=False):
    argv: list[str]
    cmdline: str | None
    config: str | None
    config_source: str | None
    defines: list[str]
    env: dict[str, str | None]
    env_source: str | None
    exe: str | None
    netns: str | None
    pid: int | None
    server_root: str | None

class HostDiscoveryDocker(TypedDict, total=False):
    reason: str | None
    socket: str | None
    state: str | None

class HostDiscoveryNginx(TypedDict, total=False):
    argv: list[str]
    cmdline: str | None
    config: str | None
    config_source: str | None
    exe: str | None
    global_directives: str | None
    netns: str | None
    pid: int | None
    prefix: str | None

class HostDiscoveryNginxAllItem(TypedDict, total=False):
    argv: list[str]
    cmdline: str | None
    config: str | None
    config_source: str | None
    exe: str | None
    global_directives: str | None
    netns: str | None
    pid: int | None
    prefix: str | None

class HostDiscoveryRegistrie(TypedDict, total=False):
    argv: list[str]
    cmdline: str | None
    config: str | None
    config_source: str | None
    env_overrides: dict[str, Any]
    exe: str | None
    netns: str | None
    pid: int | None

class HostDiscoveryRegistry(TypedDict, total=False):
    argv: list[str]
    cmdline: str | None
    config: str | None
    config_source: str | None
    env_overrides: dict[str, Any]
    exe: str | None
    netns: str | None
    pid: int | None

class HostDiscovery(TypedDict, total=False):
    apache: HostDiscoveryApache
    apache_all: list[HostDiscoveryApacheAllItem]
    container_runtime: list[Any]
    containers: list[Any]
    docker: HostDiscoveryDocker
    netns: str | None
    nginx: HostDiscoveryNginx
    nginx_all: list[HostDiscoveryNginxAllItem]
    registries: list[HostDiscoveryRegistrie]
    registry: HostDiscoveryRegistry
    sources: list[str]

class HostFirewallRoute(TypedDict, total=False):
    dev: str | None
    dst: str | None
    family: int | None
    type: str | None

class HostFirewallRulesetsIp6tables(TypedDict, total=False):
    text: str | None
    tool: str | None
    variant: str | None
    warnings: list[Any]

class HostFirewallRulesetsIptables(TypedDict, total=False):
    text: str | None
    tool: str | None
    variant: str | None
    warnings: list[Any]

class HostFirewallRulesetsNft(TypedDict, total=False):
    json: dict[str, Any]

class HostFirewallRulesets(TypedDict, total=False):
    ip6tables: HostFirewallRulesetsIp6tables
    iptables: HostFirewallRulesetsIptables
    nft: HostFirewallRulesetsNft

class HostFirewall(TypedDict, total=False):
    containerised: bool | None
    interfaces: dict[str, list[str]]
    listen: list[str]
    listen_source: str | None
    port_source: str | None
    published_ports: list[Any]
    registry_port: int | None
    registry_running: bool | None
    routes: list[HostFirewallRoute]
    rulesets: HostFirewallRulesets

class HostSocketsSocketProcesse(TypedDict, total=False):
    comm: str | None
    exe: str | None
    pid: int | None

class HostSocketsSocket(TypedDict, total=False):
    address: str | None
    endpoint: str | None
    inode: float | None
    loopback: bool | None
    port: int | None
    processes: list[HostSocketsSocketProcesse]
    table: str | None
    uid: int | None

class HostSockets(TypedDict, total=False):
    sockets: list[HostSocketsSocket]
    source: str | None

class HostTmpfsPathFstabItem(TypedDict, total=False):
    file: str | None
    flags: list[str]
    line: int | None
    options: list[str]
    size_bytes: int | None
    spec: str | None
    vfstype: str | None

class HostTmpfsPathMount(TypedDict, total=False):
    available_bytes: int | None
    flags: list[str]
    fstype: str | None
    mount_id: float | None
    mountpoint: str | None
    options: list[str]
    root: str | None
    size_bytes: int | None
    size_option: str | None
    size_option_bytes: int | None
    source: str | None
    super_options: list[str]

class HostTmpfsPath(TypedDict, total=False):
    directive: str | None
    exists: bool | None
    fstab: list[HostTmpfsPathFstabItem]
    mount: HostTmpfsPathMount
    path: str | None

class HostTmpfs(TypedDict, total=False):
    fstab_path: str | None
    fstab_readable: bool | None
    memory_bytes: int | None
    nginx_config: str | None
    nginx_pid: float | None
    paths: list[HostTmpfsPath]
    view: str | None

class HttpRegistryHeadersAnonymousChallenge(TypedDict, total=False):
    params: dict[str, Any]
    scheme: str | None

class HttpRegistryHeadersAnonymous(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[HttpRegistryHeadersAnonymousChallenge]
    headers: dict[str, Any]
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class HttpRegistryHeadersResponse(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[Any]
    headers: dict[str, Any]
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class HttpRegistryHeaders(TypedDict, total=False):
    anonymous: HttpRegistryHeadersAnonymous
    authenticated: bool | None
    responses: list[HttpRegistryHeadersResponse]
    scheme: str | None
    open_registry: bool | None

class NetRegistryPortAddresseHttp(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[Any]
    headers: dict[str, Any]
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class NetRegistryPortAddress(TypedDict, total=False):
    address: str | None
    attempts: float | None
    detail: str | None
    family: str | None
    port: int | None
    rtt_ms: float | None
    rtt_samples: float | None
    seconds: float | None
    state: str | None
    timeouts_ms: list[float]
    auth_required: bool | None
    http: NetRegistryPortAddresseHttp
    registry_answers: bool | None

class NetRegistryPort(TypedDict, total=False):
    addresses: list[NetRegistryPortAddress]
    families: list[str]
    host: str | None
    port: int | None
    port_source: str | None

class RegistryContentLargestImage(TypedDict, total=False):
    digest: str | None
    repo: str | None
    size: int | None

class RegistryContentLargestLayer(TypedDict, total=False):
    digest: str | None
    repo: str | None
    size: int | None

class RegistryContentStatsTransport(TypedDict, total=False):
    client: str | None
    http1_connections_opened: float | None
    http2_origins: list[Any]

class RegistryContentStats(TypedDict, total=False):
    file_reads: float | None
    reads_per_tag: float | None
    seconds: float | None
    requests: dict[str, float | None]
    requests_per_tag: float | None
    retries: float | None
    token_requests: float | None
    transport: RegistryContentStatsTransport

class RegistryContentTagSignature(TypedDict, total=False):
    layers: list[Any]
    manifest_digest: str | None
    scheme: str | None
    tag: str | None
    bundle: str | None
    predicate_type: str | None
    via: str | None

class RegistryContentTagPlatform(TypedDict, total=False):
    digest: str | None
    platform: str | None

class RegistryContentTag(TypedDict, total=False):
    attestations: list[Any]
    digest: str | None
    media_type: str | None
    repo: str | None
    signatures: list[RegistryContentTagSignature]
    tag: str | None
    platforms: list[RegistryContentTagPlatform]

class RegistryContent(TypedDict, total=False):
    auth_scheme: str | None
    hosts: list[str]
    largest_image: RegistryContentLargestImage
    largest_layer: RegistryContentLargestLayer
    referrers_api: bool | None
    registry: str | None
    repositories: int | None
    source: str | None
    source_choice: str | None
    stats: RegistryContentStats
    storage_root_source: str | None
    tags: list[RegistryContentTag]

class RegistryDebugHealth(TypedDict, total=False):
    body: str | None
    debug_addr: str | None
    healthy: bool | None
    reachable: bool | None
    status: int | None
    url: str | None

class ScansReports(TypedDict, total=False):
    errors: list[Any]
    ignore: list[Any]
    ignore_sources: list[Any]
    reports: dict[str, Any]
    scan_dir: str | None

class SignaturesTrustKey(TypedDict, total=False):
    pem: str | None
    source: str | None

class SignaturesTrust(TypedDict, total=False):
    errors: list[Any]
    keys: list[SignaturesTrustKey]
    trusted_root_json: Any
    trusted_root_path: Any

class StorageFilesystem(TypedDict, total=False):
    available_bytes: int | None
    free_bytes: int | None
    inodes_free: int | None
    inodes_total: int | None
    path: str | None
    source: str | None
    total_bytes: int | None
    used_bytes: int | None

class StorageLayoutBlobs(TypedDict, total=False):
    bytes: int | None
    count: int | None
    unreferenced: list[Any]
    unreferenced_bytes: int | None
    unreferenced_count: int | None

class StorageLayoutLargestImage(TypedDict, total=False):
    bytes: int | None
    manifest: str | None
    repository: str | None
    tag: str | None

class StorageLayoutLargestLayer(TypedDict, total=False):
    bytes: int | None
    digest: str | None
    manifest: str | None
    repository: str | None
    tag: str | None

class StorageLayoutUpload(TypedDict, total=False):
    data_bytes: int | None
    repository: str | None
    startedat: str | None
    uuid: str | None

class StorageLayout(TypedDict, total=False):
    blobs: StorageLayoutBlobs
    exists: bool | None
    largest_image: StorageLayoutLargestImage
    largest_layer: StorageLayoutLargestLayer
    layout: str | None
    manifests_read: int | None
    problems: list[Any]
    repositories: int | None
    root_source: str | None
    rootdirectory: str | None
    tags: int | None
    uploads: list[StorageLayoutUpload]

class TlsScanAddressCertificate(TypedDict, total=False):
    anchors: list[str]
    auth: str | None
    chain: list[Any]
    chain_verified_at_scan: dict[str, Any]
    name_matches: bool | None
    ocsp_stapling: dict[str, Any]
    server_name: str | None
    source: str | None
    trust_store: str | None

class TlsScanAddress(TypedDict, total=False):
    address: str | None
    certificate_error: Any
    certificates: list[TlsScanAddressCertificate]
    cipher_suites: dict[str, Any]
    enumeration_errors: dict[str, Any]
    family: str | None
    protocol_answers: dict[str, str | None]
    protocols: dict[str, bool | None]
    reachable: bool | None
    server_preference: dict[str, Any]

class TlsScanSuiteTable(TypedDict, total=False):
    iana: int | None
    suites: int | None

class TlsScan(TypedDict, total=False):
    addresses: list[TlsScanAddress]
    elapsed_s: float | None
    errors: list[Any]
    handshakes: int | None
    host: str | None
    port: int | None
    scanned_at: str | None
    server_name: str | None
    suite_table: TlsScanSuiteTable

class AdmissionManifests(TypedDict, total=False):
    directory: str | None
    files: int | None
    kinds: dict[str, Any]
    errors: list[Any]
    truncated: bool | None
    policies: list[dict[str, Any]]
    trusted_keys: list[Any]
    registry_hosts: list[str]
class AuthToken(TypedDict, total=False):
    realm: str | None
    realm_scheme: str | None
    service: str | None
    services_seen: list[Any]
    target_host: str | None
    active: bool | None
    upload_repository: str | None
    pull_token: dict[str, Any]
    anonymous: dict[str, Any]

# The shape of each built-in probe's value, by probe name.
SHAPES: dict[str, Any] = {
    "admission.manifests": AdmissionManifests,

    "auth.anonymous": AuthAnonymous,
    "auth.plaintext": AuthPlaintext,
    "auth.token": AuthToken,
    "config.apache": ConfigApache,
    "config.nginx": ConfigNginx,
    "config.registry": ConfigRegistry,
    "files.stat": FilesStat,
    "host.discovery": HostDiscovery,
    "host.firewall": HostFirewall,
    "host.sockets": HostSockets,
    "host.tmpfs": HostTmpfs,
    "http.registry-headers": HttpRegistryHeaders,
    "net.registry-port": NetRegistryPort,
    "registry.content": RegistryContent,
    "registry.debug-health": RegistryDebugHealth,
    "scans.reports": ScansReports,
    "signatures.trust": SignaturesTrust,
    "storage.filesystem": StorageFilesystem,
    "storage.layout": StorageLayout,
    "tls.scan": TlsScan,
}
