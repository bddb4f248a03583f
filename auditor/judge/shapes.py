"""The declared shape of every built-in probe's value (the evidence a check may read).

This module is the source of truth: scripts/evidence_schemas.py derives the JSON Schema files
shipped in auditor/schemas/evidence/ and docs/evidence.md from it, and tests/unit/test_evidence_shapes.py
fails when they disagree. Every key is optional (a probe that cannot see a fact leaves it out) and
scalar facts may be null; what the shape pins is each key's name and type, so that a key renamed or
retyped in a probe fails when the audit saves its evidence and `evaluate` refuses a file recorded in
another shape, naming the probe and the field. Mappings whose keys are data (a user's registry
config, HTTP headers, per-interface addresses) stay `dict[str, ...]`. Checks read these types:
`ev.typed("config.nginx", ConfigNginx)`.

Pure: typing only (checks import it; see docs/architecture.md). Probes import it too, so it also runs
in the gather-only zipapp on Python 3.9: annotations are never evaluated at import (postponed in
classes, quoted in the functional TypedDicts whose keys are Python keywords).
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
    params: dict[str, Any] | None
    scheme: str | None

class AuthAnonymousRequest(TypedDict, total=False):
    error: str | None
    redirected_off_origin: Any
    body_truncated: bool | None
    challenges: list[AuthAnonymousRequestChallenge] | None
    headers: dict[str, Any] | None
    http_version: str | None
    method: str | None
    path: str | None
    redirects_followed: float | None
    status: int | None

class AuthAnonymous(TypedDict, total=False):
    catalog_walk: AuthAnonymousCatalogWalk | None
    credentials_given: bool | None
    reference: AuthAnonymousReference | None
    requests: list[AuthAnonymousRequest] | None
    url: str | None

class AuthPlaintextAddress(TypedDict, total=False):
    address: str | None
    family: str | None

class AuthPlaintextEndpointHttp(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[Any] | None
    headers: dict[str, Any] | None
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class AuthPlaintextEndpoint(TypedDict, total=False):
    address: str | None
    attempts: float | None
    detail: str | None
    family: str | None
    http: AuthPlaintextEndpointHttp | None
    port: int | None
    rtt_ms: float | None
    rtt_samples: float | None
    seconds: float | None
    state: str | None
    timeouts_ms: list[Any] | None

class AuthPlaintext(TypedDict, total=False):
    addresses: list[AuthPlaintextAddress] | None
    endpoints: list[AuthPlaintextEndpoint] | None
    host: str | None
    ports: list[float] | None

class ConfigApacheApache2ctlAgrees(TypedDict, total=False):
    files_agree: bool | None
    files_only_apache_read: list[Any] | None
    files_only_parser_read: list[Any] | None
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
    suites: list[ConfigApacheCipherExpansionSuite] | None
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
    also: list[Any] | None
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
    "from": "str | None",
    "rules": "list[Any] | None",
}, total=False)

class ConfigApacheV2Access(TypedDict, total=False):
    auth_basic_provider: ConfigApacheV2AccessAuthBasicProvider | None
    auth_name: ConfigApacheV2AccessAuthName | None
    auth_type: ConfigApacheV2AccessAuthType | None
    auth_user_file: ConfigApacheV2AccessAuthUserFile | None
    limit_request_body: ConfigApacheV2AccessLimitRequestBody | None
    require: ConfigApacheV2AccessRequire | None
    sections: list[str] | None
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
    "from": "str | None",
    "rules": "list[Any] | None",
}, total=False)

class ConfigApacheV2AccessByUriItem(TypedDict, total=False):
    auth_basic_provider: ConfigApacheV2AccessByUriItemAuthBasicProvider | None
    auth_name: ConfigApacheV2AccessByUriItemAuthName | None
    auth_type: ConfigApacheV2AccessByUriItemAuthType | None
    auth_user_file: ConfigApacheV2AccessByUriItemAuthUserFile | None
    limit_request_body: ConfigApacheV2AccessByUriItemLimitRequestBody | None
    require: ConfigApacheV2AccessByUriItemRequire | None
    sections: list[str] | None
    uri: str | None

class ConfigApacheVhostProxyAddHeaders(TypedDict, total=False):
    args: list[str]
    level: str | None
    value: str | None
    where: Any

class ConfigApacheVhostProxyPas(TypedDict, total=False):
    flags: list[str] | None
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
    flags: list[str] | None
    in_location: Any
    level: str | None
    path: str | None
    url: str | None
    where: str | None

class ConfigApacheVhost(TypedDict, total=False):
    addresses: list[str] | None
    limit_request_body_default: float | None
    proxy_add_headers: ConfigApacheVhostProxyAddHeaders | None
    proxy_pass: list[ConfigApacheVhostProxyPas] | None
    proxy_pass_reverse: list[ConfigApacheVhostProxyPassReverseItem] | None
    proxy_preserve_host: ConfigApacheVhostProxyPreserveHost | None
    proxy_timeout: ConfigApacheVhostProxyTimeout | None
    request_headers: list[ConfigApacheVhostRequestHeader] | None
    response_headers: list[ConfigApacheVhostResponseHeader] | None
    server_aliases: list[Any] | None
    server_name: str | None
    ssl_certificate_file: list[str] | None
    ssl_certificate_key_file: list[str] | None
    ssl_cipher_suite: ConfigApacheVhostSslCipherSuite | None
    ssl_cipher_suite_tls13: Any
    ssl_engine: ConfigApacheVhostSslEngine | None
    ssl_honor_cipher_order: ConfigApacheVhostSslHonorCipherOrder | None
    ssl_openssl_conf_cmd: list[Any] | None
    ssl_protocol: ConfigApacheVhostSslProtocol | None
    v2_proxy_pass: ConfigApacheVhostV2ProxyPass | None
    v2_upstream_loopback: bool | None
    where: str | None

class ConfigApacheVhostItem(TypedDict, total=False):
    addresses: list[str] | None
    on_port_443: bool | None
    server_aliases: list[Any] | None
    server_name: str | None
    where: str | None

class ConfigApache(TypedDict, total=False):
    apache2ctl: dict[str, Any] | None
    apache2ctl_agrees: ConfigApacheApache2ctlAgrees | None
    auth_user_file: ConfigApacheAuthUserFile | None
    cipher_expansion: ConfigApacheCipherExpansion | None
    defines: list[str] | None
    errors: list[Any] | None
    files: list[ConfigApacheFile] | None
    listen: list[str] | None
    modules: list[str] | None
    path: str | None
    pid: int | None
    registry_address: ConfigApacheRegistryAddress | None
    running: bool | None
    selection: str | None
    server_root: str | None
    skipped_sections: list[str] | None
    source: str | None
    target_host: str | None
    target_port: int | None
    v2_access: ConfigApacheV2Access | None
    v2_access_by_uri: list[ConfigApacheV2AccessByUriItem] | None
    vhost: ConfigApacheVhost | None
    vhosts: list[ConfigApacheVhostItem] | None

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
    also: list[Any] | None
    host: str | None
    port: int | None
    source: str | None

class ConfigNginxRegistryServerAddHeader(TypedDict, total=False):
    headers: list[Any] | None
    level: str | None

ConfigNginxRegistryServerAuthByUriItem = TypedDict("ConfigNginxRegistryServerAuthByUriItem", {
    "access": "dict[str, Any] | None",
    "auth_basic": "dict[str, Any] | None",
    "auth_basic_user_file": "dict[str, Any] | None",
    "auth_request": "dict[str, Any] | None",
    "limit_except": "list[Any] | None",
    "location": "dict[str, Any] | None",
    "proxy_pass": "str | None",
    "return": "Any",
    "satisfy": "dict[str, Any] | None",
    "to_registry": "bool | None",
    "uri": "str | None",
}, total=False)

class ConfigNginxRegistryServerDirectives(TypedDict, total=False):
    auth_basic: dict[str, Any] | None
    auth_request: dict[str, Any] | None
    chunked_transfer_encoding: dict[str, Any] | None
    client_body_temp_path: dict[str, Any] | None
    client_body_timeout: dict[str, Any] | None
    client_max_body_size: dict[str, Any] | None
    proxy_buffer_size: dict[str, Any] | None
    proxy_buffering: dict[str, Any] | None
    proxy_buffers: dict[str, Any] | None
    proxy_busy_buffers_size: dict[str, Any] | None
    proxy_connect_timeout: dict[str, Any] | None
    proxy_http_version: dict[str, Any] | None
    proxy_max_temp_file_size: dict[str, Any] | None
    proxy_read_timeout: dict[str, Any] | None
    proxy_request_buffering: dict[str, Any] | None
    proxy_send_timeout: dict[str, Any] | None
    proxy_temp_file_write_size: dict[str, Any] | None
    proxy_temp_path: dict[str, Any] | None
    satisfy: dict[str, Any] | None
    ssl_ciphers: dict[str, Any] | None
    ssl_protocols: dict[str, Any] | None

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
    targets: list[str] | None
    to_registry: bool | None
    url: str | None

class ConfigNginxRegistryServerProxySetHeader(TypedDict, total=False):
    headers: list[Any] | None
    level: str | None

class ConfigNginxRegistryServerTls(TypedDict, total=False):
    cipher_expansion: dict[str, Any] | None
    plaintext_listeners: list[str] | None
    ssl_ciphers: dict[str, Any] | None
    ssl_conf_command: list[Any] | None
    ssl_listeners: list[Any] | None
    ssl_prefer_server_ciphers: dict[str, Any] | None
    ssl_protocols: dict[str, Any] | None

class ConfigNginxRegistryServer(TypedDict, total=False):
    add_header: ConfigNginxRegistryServerAddHeader | None
    all_sample_uris_same_location: bool | None
    auth_basic_user_files: list[Any] | None
    auth_by_uri: list[ConfigNginxRegistryServerAuthByUriItem] | None
    directives: ConfigNginxRegistryServerDirectives | None
    listen: list[ConfigNginxRegistryServerListenItem] | None
    location: ConfigNginxRegistryServerLocation | None
    plaintext_public_listeners: list[Any] | None
    proxy_pass: ConfigNginxRegistryServerProxyPass | None
    proxy_set_header: ConfigNginxRegistryServerProxySetHeader | None
    server_names: list[str] | None
    ssl_certificate: list[Any] | None
    ssl_certificate_key: list[Any] | None
    tls: ConfigNginxRegistryServerTls | None
    where: str | None

class ConfigNginx(TypedDict, total=False):
    auth_user_files: list[Any] | None
    build: ConfigNginxBuild | None
    client_body_temp_path: str | None
    errors: list[Any] | None
    files: list[ConfigNginxFile] | None
    http_block: bool | None
    maps: list[Any] | None
    method: str | None
    nginx_t_error: Any
    other_servers: list[Any] | None
    path: str | None
    pid: int | None
    plaintext_v2_listeners: list[Any] | None
    prefix: str | None
    proxy_temp_path: str | None
    registry_address: ConfigNginxRegistryAddress | None
    registry_servers: list[ConfigNginxRegistryServer] | None
    running: bool | None
    source: str | None
    temp_paths: list[str] | None
    upstreams: dict[str, Any] | None

class ConfigRegistryFile(TypedDict, total=False):
    exists: bool | None
    gid: int | None
    is_file: bool | None
    mode: str | None
    path: str | None
    size: int | None
    uid: int | None

class ConfigRegistry(TypedDict, total=False):
    config: dict[str, Any] | None
    file: ConfigRegistryFile | None
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
    entries: list[FilesStatHtpasswdItemEntrie] | None
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
    configs: list[FilesStatConfig] | None
    htpasswd: list[FilesStatHtpasswdItem] | None
    sources: list[str] | None
    sources_unavailable: dict[str, Any] | None
    tls_keys: list[FilesStatTlsKey] | None

class HostDiscoveryApache(TypedDict, total=False):
    argv: list[str] | None
    cmdline: str | None
    config: str | None
    config_source: str | None
    defines: list[str] | None
    env: dict[str, str | None] | None
    env_source: str | None
    exe: str | None
    netns: str | None
    pid: int | None
    server_root: str | None

class HostDiscoveryApacheAllItem(TypedDict, total=False):
    argv: list[str] | None
    cmdline: str | None
    config: str | None
    config_source: str | None
    defines: list[str] | None
    env: dict[str, str | None] | None
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
    argv: list[str] | None
    cmdline: str | None
    config: str | None
    config_source: str | None
    exe: str | None
    global_directives: str | None
    netns: str | None
    pid: int | None
    prefix: str | None

class HostDiscoveryNginxAllItem(TypedDict, total=False):
    argv: list[str] | None
    cmdline: str | None
    config: str | None
    config_source: str | None
    exe: str | None
    global_directives: str | None
    netns: str | None
    pid: int | None
    prefix: str | None

class HostDiscoveryRegistrie(TypedDict, total=False):
    argv: list[str] | None
    cmdline: str | None
    config: str | None
    config_source: str | None
    env_overrides: dict[str, Any] | None
    exe: str | None
    netns: str | None
    pid: int | None

class HostDiscoveryRegistry(TypedDict, total=False):
    argv: list[str] | None
    cmdline: str | None
    config: str | None
    config_source: str | None
    env_overrides: dict[str, Any] | None
    exe: str | None
    netns: str | None
    pid: int | None

class HostDiscoveryContainer(TypedDict, total=False):
    """A registry or nginx container as the Docker Engine API describes it (auditor/host/docker.py)."""

    id: str | None
    name: str | None
    image: str | None
    role: str | None
    config_in_container: str | None
    config_mount: dict[str, Any] | None
    pid: int | None
    running: bool | None
    argv: list[Any] | None
    cmd: list[str] | None
    privileged: bool | None
    cap_add: list[str] | None
    cap_drop: list[str] | None
    read_only_rootfs: bool | None
    restart_policy: str | None
    restart_max_retries: int | None
    security_opt: list[str] | None
    user: str | None
    network_mode: Any
    pid_mode: str | None
    published_ports: list[Any] | None
    mounts: list[Any] | None
    tmpfs: list[Any] | None
    compose: dict[str, Any] | None
    listening: Any


class HostDiscovery(TypedDict, total=False):
    apache: HostDiscoveryApache | None
    apache_all: list[HostDiscoveryApacheAllItem] | None
    container_runtime: list[HostDiscoveryContainer] | None
    containers: list[Any] | None
    docker: HostDiscoveryDocker | None
    netns: str | None
    nginx: HostDiscoveryNginx | None
    nginx_all: list[HostDiscoveryNginxAllItem] | None
    registries: list[HostDiscoveryRegistrie] | None
    registry: HostDiscoveryRegistry | None
    sources: list[str] | None

class HostFirewallRoute(TypedDict, total=False):
    dev: str | None
    dst: str | None
    family: int | None
    type: str | None

class HostFirewallRulesetsIp6tables(TypedDict, total=False):
    text: str | None
    tool: str | None
    variant: str | None
    warnings: list[Any] | None

class HostFirewallRulesetsIptables(TypedDict, total=False):
    text: str | None
    tool: str | None
    variant: str | None
    warnings: list[Any] | None

class HostFirewallRulesetsNft(TypedDict, total=False):
    json: dict[str, Any] | None

class HostFirewallRulesets(TypedDict, total=False):
    ip6tables: HostFirewallRulesetsIp6tables | None
    iptables: HostFirewallRulesetsIptables | None
    nft: HostFirewallRulesetsNft | None

class HostFirewall(TypedDict, total=False):
    containerised: bool | None
    interfaces: dict[str, list[str]] | None
    listen: list[str] | None
    listen_source: str | None
    port_source: str | None
    published_ports: list[Any] | None
    registry_port: int | None
    registry_running: bool | None
    routes: list[HostFirewallRoute] | None
    rulesets: HostFirewallRulesets | None

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
    processes: list[HostSocketsSocketProcesse] | None
    table: str | None
    uid: int | None

class HostSockets(TypedDict, total=False):
    sockets: list[HostSocketsSocket] | None
    source: str | None

class HostTmpfsPathFstabItem(TypedDict, total=False):
    file: str | None
    flags: list[str] | None
    line: int | None
    options: list[str] | None
    size_bytes: int | None
    spec: str | None
    vfstype: str | None

class HostTmpfsPathMount(TypedDict, total=False):
    available_bytes: int | None
    flags: list[str] | None
    fstype: str | None
    mount_id: float | None
    mountpoint: str | None
    options: list[str] | None
    root: str | None
    size_bytes: int | None
    size_option: str | None
    size_option_bytes: int | None
    source: str | None
    super_options: list[str] | None

class HostTmpfsPath(TypedDict, total=False):
    directive: str | None
    exists: bool | None
    fstab: list[HostTmpfsPathFstabItem] | None
    mount: HostTmpfsPathMount | None
    path: str | None

class HostTmpfs(TypedDict, total=False):
    fstab_path: str | None
    fstab_readable: bool | None
    memory_bytes: int | None
    nginx_config: str | None
    nginx_pid: float | None
    paths: list[HostTmpfsPath] | None
    view: str | None

class HttpRegistryHeadersAnonymousChallenge(TypedDict, total=False):
    params: dict[str, Any] | None
    scheme: str | None

class HttpRegistryHeadersAnonymous(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[HttpRegistryHeadersAnonymousChallenge] | None
    headers: dict[str, Any] | None
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class HttpRegistryHeadersResponse(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[Any] | None
    headers: dict[str, Any] | None
    http_version: str | None
    method: str | None
    path: str | None
    status: int | None

class HttpRegistryHeaders(TypedDict, total=False):
    anonymous: HttpRegistryHeadersAnonymous | None
    authenticated: bool | None
    responses: list[HttpRegistryHeadersResponse] | None
    scheme: str | None
    open_registry: bool | None

class NetRegistryPortAddresseHttp(TypedDict, total=False):
    body_truncated: bool | None
    challenges: list[Any] | None
    headers: dict[str, Any] | None
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
    timeouts_ms: list[float] | None
    auth_required: bool | None
    http: NetRegistryPortAddresseHttp | None
    registry_answers: bool | None

class NetRegistryPort(TypedDict, total=False):
    addresses: list[NetRegistryPortAddress] | None
    families: list[str] | None
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
    http2_origins: list[Any] | None

class RegistryContentStats(TypedDict, total=False):
    file_reads: float | None
    reads_per_tag: float | None
    seconds: float | None
    requests: dict[str, float | None] | None
    requests_per_tag: float | None
    retries: float | None
    token_requests: float | None
    transport: RegistryContentStatsTransport | None

class RegistryContentTagSignature(TypedDict, total=False):
    layers: list[Any] | None
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
    attestations: list[Any] | None
    digest: str | None
    media_type: str | None
    repo: str | None
    signatures: list[RegistryContentTagSignature] | None
    tag: str | None
    platforms: list[RegistryContentTagPlatform] | None

class RegistryContent(TypedDict, total=False):
    auth_scheme: str | None
    hosts: list[str] | None
    largest_image: RegistryContentLargestImage | None
    largest_layer: RegistryContentLargestLayer | None
    referrers_api: bool | None
    registry: str | None
    repositories: int | None
    source: str | None
    source_choice: str | None
    stats: RegistryContentStats | None
    storage_root_source: str | None
    tags: list[RegistryContentTag] | None

class RegistryDebugHealth(TypedDict, total=False):
    body: str | None
    debug_addr: str | None
    healthy: bool | None
    reachable: bool | None
    status: int | None
    url: str | None

class ScansReports(TypedDict, total=False):
    errors: list[Any] | None
    ignore: list[Any] | None
    ignore_sources: list[Any] | None
    reports: dict[str, Any] | None
    scan_dir: str | None
    rescan: dict[str, Any] | None

class SignaturesTrustKey(TypedDict, total=False):
    pem: str | None
    source: str | None

class SignaturesTrust(TypedDict, total=False):
    errors: list[Any] | None
    keys: list[SignaturesTrustKey] | None
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
    unreferenced: list[Any] | None
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
    blobs: StorageLayoutBlobs | None
    exists: bool | None
    largest_image: StorageLayoutLargestImage | None
    largest_layer: StorageLayoutLargestLayer | None
    layout: str | None
    manifests_read: int | None
    problems: list[Any] | None
    repositories: int | None
    root_source: str | None
    rootdirectory: str | None
    tags: int | None
    uploads: list[StorageLayoutUpload] | None

class TlsScanAddressCertificate(TypedDict, total=False):
    anchors: list[str] | None
    auth: str | None
    chain: list[Any] | None
    chain_verified_at_scan: dict[str, Any] | None
    name_matches: bool | None
    ocsp_stapling: dict[str, Any] | None
    server_name: str | None
    source: str | None
    trust_store: str | None

class TlsScanAddress(TypedDict, total=False):
    address: str | None
    error: str | None
    certificate_error: Any
    certificates: list[TlsScanAddressCertificate] | None
    cipher_suites: dict[str, Any] | None
    enumeration_errors: dict[str, Any] | None
    family: str | None
    protocol_answers: dict[str, str | None] | None
    protocols: dict[str, bool | None] | None
    reachable: bool | None
    server_preference: dict[str, Any] | None

class TlsScanSuiteTable(TypedDict, total=False):
    iana: int | None
    suites: int | None

class TlsScan(TypedDict, total=False):
    addresses: list[TlsScanAddress] | None
    elapsed_s: float | None
    errors: list[Any] | None
    handshakes: int | None
    host: str | None
    port: int | None
    scanned_at: str | None
    server_name: str | None
    suite_table: TlsScanSuiteTable | None

class AdmissionManifests(TypedDict, total=False):
    directory: str | None
    files: int | None
    kinds: dict[str, Any] | None
    errors: list[Any] | None
    truncated: bool | None
    policies: list[dict[str, Any]] | None
    trusted_keys: list[Any] | None
    registry_hosts: list[str] | None
class AuthToken(TypedDict, total=False):
    error: str | None
    realm: str | None
    realm_scheme: str | None
    service: str | None
    services_seen: list[Any] | None
    target_host: str | None
    active: bool | None
    upload_repository: str | None
    anonymous_token: dict[str, Any] | None
    pull_token: dict[str, Any] | None
    bad_credentials: dict[str, Any] | None
    upload_attempts: dict[str, Any] | None

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
