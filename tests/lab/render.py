"""Config file text for the registry, nginx and Apache, from the guide read with docs/guide-notes.md.

Contract: pure functions (no I/O) returning file contents; `paths` is the lab's Paths object.
Variant differences come only from the `Variant` fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .variants import (
    AUTH_HOSTNAME,
    DEBUG_ADDR,
    HOSTNAME,
    NGINX_LISTEN,
    OCSP_LISTEN,
    TOKEN_PORT,
    WATCH_LISTEN,
    Variant,
)

if TYPE_CHECKING:
    from .paths import Paths

APACHE_MODULES = (
    "mpm_event", "authz_core", "authz_host", "authz_user", "authn_core", "authn_file", "auth_basic",
    "alias", "headers", "mime", "proxy", "proxy_http", "socache_shmcb", "ssl",
)


def token_realm() -> str:
    """The token service's realm URL (served by lab.content token-service)."""
    return f"https://{AUTH_HOSTNAME}:{TOKEN_PORT}/token"


def registry_config(v: Variant, p: Paths, addr: str, debug: bool, token: dict[str, Any] | None = None,
                    notify_token: str | None = None) -> str:
    """docker-registry config.yml: the guide's, plus debug addr, storage root in the lab dir."""
    purging = "true" if v.upload_purging else "false"
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        f"  formatter: {v.log_formatter}",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {p.storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",  # a partial uploadpurging section panics the registry (2.8)
        f"      enabled: {purging}",
        "      age: 168h",
        "      interval: 24h",
        "      dryrun: false",
        "http:",
        f"  addr: \"{addr}\"",
        f"  host: https://{HOSTNAME}",
    ]
    if v.nosniff:
        lines += ["  headers:", "    X-Content-Type-Options: [nosniff]"]
    lines += ["  http2:", "    disabled: false"]
    if debug:
        lines += ["  debug:", f"    addr: {DEBUG_ADDR}"]
    lines += ["health:", "  storagedriver:", "    enabled: true", "    interval: 10s", "    threshold: 3"]
    if v.auth == "token":
        assert token is not None, "token variant needs the token material (lab.content.token.prepare)"
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token_realm()}",
            f"    service: {HOSTNAME}",
            f"    issuer: \"{token['issuer']}\"",
            f"    rootcertbundle: {token['rootcertbundle']}",
            "    autoredirect: false",
        ]
    if v.notify and notify_token:
        lines += notifications_block(notify_token)
    return "\n".join(lines) + "\n"


def _nginx_http_head(p: Paths, upstream: str) -> str:
    """The start of every lab nginx.conf up to and including the registry upstream (inside `http`)."""
    return f"""\
user www-data;
worker_processes 1;
pid {p.nginx_pid};
error_log {p.nginx / 'error.log'} warn;

events {{
    worker_connections 256;
}}

http {{
    default_type application/octet-stream;
    access_log {p.nginx / 'access.log'};
    server_tokens off;
    fastcgi_temp_path {p.nginx / 'tmp' / 'fastcgi'};
    uwsgi_temp_path {p.nginx / 'tmp' / 'uwsgi'};
    scgi_temp_path {p.nginx / 'tmp' / 'scgi'};

    upstream docker-registry {{
        server {upstream};
    }}
"""


def nginx_edge_config(v: Variant, p: Paths, upstream: str) -> str:
    """nginx.conf for nginx alone (the registry's documentation recipe): TLS on 443 (v4 and v6) with
    auth_basic and a bcrypt user file, the Docker-Distribution-Api-Version mapping, chunked
    transfer encoding, the guide's body size, buffers and timeouts, temp paths on the tmpfs; :80
    only redirects."""
    t = v.nginx_timeout
    hole = "\n            satisfy any;\n            allow all;" if v.nginx_auth_hole else ""
    header = ("\n            add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;"
              if v.nginx_api_version_header else "")
    # add_header is inherited only by levels without their own: the location repeats HSTS
    hsts = f'\n        add_header Strict-Transport-Security "{v.hsts}" always;' if v.hsts else ""
    hsts_location = f'\n            add_header Strict-Transport-Security "{v.hsts}" always;' if v.hsts and header else ""
    stapling = (f"\n        ssl_stapling on;\n        ssl_stapling_verify on;\n"
                f"        ssl_trusted_certificate {p.pki / 'ca.pem'};" if v.ocsp_stapling else "")
    return f"""\
# regaudit lab ({v.name}): nginx alone terminates TLS (the registry's documentation recipe)
{_nginx_http_head(p, upstream)}
    map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
        '' 'registry/2.0';
    }}

    server {{
        listen 0.0.0.0:80;
        listen [::]:80;
        server_name {HOSTNAME};
        return 301 https://$host$request_uri;
    }}

    server {{
        listen 0.0.0.0:443 ssl;
        listen [::]:443 ssl;
        server_name {HOSTNAME};

        ssl_certificate     {p.pki / 'server-rsa.pem'};
        ssl_certificate_key {p.pki / 'server-rsa.key'};
        ssl_certificate     {p.pki / 'server-ecdsa.pem'};
        ssl_certificate_key {p.pki / 'server-ecdsa.key'};
        ssl_protocols {v.nginx_protocols};
        ssl_ciphers {v.ssl_ciphers};
        ssl_prefer_server_ciphers on;
        ssl_session_cache shared:SSL:1m;{stapling}{hsts}

        client_max_body_size {v.nginx_body};
        client_body_temp_path {p.client_body_temp};
        chunked_transfer_encoding on;

        proxy_buffering on;
        proxy_buffer_size 32k;
        proxy_buffers 16 64k;
        proxy_busy_buffers_size 128k;

        proxy_temp_path {p.proxy_temp};
        proxy_max_temp_file_size 4096m;

        proxy_read_timeout {t};
        proxy_send_timeout {t};
        proxy_connect_timeout 60s;

        location /v2/ {{
            auth_basic "Registry realm";
            auth_basic_user_file {p.htpasswd};{hole}{header}{hsts_location}

            proxy_pass http://docker-registry;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def notifications_block(token: str) -> list[str]:
    """The registry's notifications endpoint: the lab's watcher on loopback, pulls and layers ignored."""
    return [
        "notifications:",
        "  events:",
        "    includereferences: true",
        "  endpoints:",
        "    - name: regaudit-watch",
        f"      url: http://{WATCH_LISTEN}/events",
        "      headers:",
        f"        Authorization: [Bearer {token}]",
        "      timeout: 2s",
        "      threshold: 3",
        "      backoff: 250ms",
        "      ignore:",
        "        actions: [pull]",
    ]


def nginx_config(v: Variant, p: Paths, upstream: str) -> str:
    """nginx.conf: the guide's server block on loopback (docs/guide-notes.md#inner-nginx-listener), temp paths on the tmpfs (docs/guide-notes.md#nginx-temp-paths-on-tmpfs);
    for nginx alone, `nginx_edge_config`."""
    if v.proxies == "nginx":
        return nginx_edge_config(v, p, upstream)
    t = v.nginx_timeout
    return f"""\
{_nginx_http_head(p, upstream)}
    server {{
        listen {NGINX_LISTEN};
        server_name registry.internal;

        client_max_body_size {v.nginx_body};
        client_body_temp_path {p.client_body_temp};

        proxy_buffering on;
        proxy_buffer_size 32k;
        proxy_buffers 16 64k;
        proxy_busy_buffers_size 128k;

        proxy_temp_path {p.proxy_temp};
        proxy_max_temp_file_size 4096m;

        proxy_read_timeout {t};
        proxy_send_timeout {t};
        proxy_connect_timeout 60s;

        location /v2/ {{
            proxy_pass http://docker-registry;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


APACHE_DEFINE = "REGAUDIT_LAB"
NGINX_GLOBALS = "daemon off;"


def nginx_argv(p: Paths) -> list[str]:
    """How the lab starts nginx: in the foreground the way the official image does (`-g 'daemon
    off;'`, one argument holding a space), so argument boundaries are exercised."""
    return ["nginx", "-c", str(p.nginx_conf), "-g", NGINX_GLOBALS]


def ocsp_responder_argv(p: Paths) -> list[str]:
    """The lab OCSP responder (lab/ocsp_responder.py) answering for the lab's server certificates."""
    host, port = OCSP_LISTEN.rsplit(":", 1)
    return ["python3", "-m", "lab.ocsp_responder", str(p.pki), host, port]


def apache_argv(p: Paths) -> list[str]:
    """How the lab starts Apache: with a -D define its config requires (an `Error` otherwise)."""
    return ["apache2", "-d", str(p.apache), "-f", str(p.apache_conf), "-D", APACHE_DEFINE]


def apache_config(v: Variant, p: Paths) -> str:
    """apache2.conf: the guide's vhost on *:443 (docs/guide-notes.md#apache-vhost-address), RSA and ECDSA certs, :80 redirects."""
    modules = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in APACHE_MODULES)
    if v.auth == "basic":
        auth = f"""
    <Location /v2/>
        AuthType Basic
        AuthName "Registry Authentication"
        AuthUserFile {p.htpasswd}
        Require valid-user
    </Location>"""
    elif v.auth == "open":  # seeded defect: an auth type and user file, but nothing required
        auth = f"""
    <Location /v2/>
        AuthType Basic
        AuthName "Registry Authentication"
        AuthUserFile {p.htpasswd}
        Require all granted
    </Location>"""
    else:  # token: the registry itself challenges with Bearer
        auth = ""
    # Apache alone (the guide's main path) proxies straight to the registry on loopback.
    nginx = f"http://{NGINX_LISTEN}/" if v.has_nginx else f"http://{registry_upstream(v)}/"
    limit = f"LimitRequestBody {v.apache_limit_request_body}" if v.apache_limit_request_body is not None else \
        "# LimitRequestBody unset"
    stapling_cache = f"SSLStaplingCache shmcb:{p.apache_run}/ssl_stapling(128000)\n" if v.ocsp_stapling else ""
    # mod_ssl finds the issuer it names in the OCSP request in SSLCACertificateFile (no client auth)
    stapling = (f"    SSLUseStapling        On\n    SSLCACertificateFile  {p.pki / 'ca.pem'}\n"
                if v.ocsp_stapling else "")
    hsts = f'    Header always set Strict-Transport-Security "{v.hsts}"\n' if v.hsts else ""
    return f"""\
# regaudit lab ({v.name}): started as `apache2 -d {p.apache} -f {p.apache_conf} -D {APACHE_DEFINE}`
<IfDefine !{APACHE_DEFINE}>
    Error "start this config with -D {APACHE_DEFINE} (its -D defines must reach every apache2 -t)"
</IfDefine>
ServerRoot "{p.apache}"
DefaultRuntimeDir {p.apache_run}
PidFile {p.apache_pid}
Mutex file:{p.apache_run} default
ServerName {HOSTNAME}
User www-data
Group www-data
ErrorLog {p.apache / 'logs' / 'error.log'}
LogLevel warn
Timeout 300
KeepAlive On
ServerTokens Prod
ServerSignature Off
TraceEnable Off

{modules}

LogFormat "%h %l %u %t \\"%r\\" %>s %O" common
CustomLog {p.apache / 'logs' / 'access.log'} common
TypesConfig /etc/mime.types
SSLSessionCache shmcb:{p.apache_run}/ssl_scache(512000)
{stapling_cache}
Listen 0.0.0.0:80
Listen [::]:80
Listen 0.0.0.0:443
Listen [::]:443

<Directory />
    AllowOverride None
    Require all denied
</Directory>

<VirtualHost *:80>
    ServerName {HOSTNAME}
    Redirect permanent / https://{HOSTNAME}/
</VirtualHost>

<VirtualHost *:443>
    ServerName {HOSTNAME}

    SSLEngine On
    SSLCertificateFile    {p.pki / 'server-rsa.pem'}
    SSLCertificateKeyFile {p.pki / 'server-rsa.key'}
    SSLCertificateFile    {p.pki / 'server-ecdsa.pem'}
    SSLCertificateKeyFile {p.pki / 'server-ecdsa.key'}
    SSLProtocol           {v.ssl_protocols}
    SSLCipherSuite        {v.ssl_ciphers}
{stapling}{hsts}
    # Registry requires these headers
    RequestHeader set X-Forwarded-Proto "https"

    # Proxy to the inner nginx (loopback), or to the registry itself when Apache is alone
    ProxyPass        / {nginx} nocanon
    ProxyPassReverse / {nginx}

    ProxyTimeout {v.apache_proxy_timeout}
    {limit}
{auth}
</VirtualHost>
"""


def registry_upstream(v: Variant) -> str:
    """host:port a proxy reaches the registry at (":5000" binds every address: use loopback)."""
    upstream = v.registry_addrs[0]
    return "127.0.0.1" + upstream if upstream.startswith(":") else upstream


def apache_env(p: Paths) -> dict[str, str]:
    """The Debian envvars apache2 expects, pointed at the lab's own directories."""
    return {
        "APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data",
        "APACHE_PID_FILE": str(p.apache_pid), "APACHE_RUN_DIR": str(p.apache_run),
        "APACHE_LOCK_DIR": str(p.apache_run), "APACHE_LOG_DIR": str(p.apache / "logs"),
        "LANG": "C",
    }


def fstab_line(v: Variant, p: Paths) -> str:
    """The lab's fstab entry for nginx's temp tmpfs (mount options identical to the live mount)."""
    return f"tmpfs {p.tmpfs} tmpfs {tmpfs_options(v)} 0 0\n"


def tmpfs_options(v: Variant) -> str:
    """Mount options string: defaults,size=...,<flags>."""
    return ",".join(("defaults", f"size={v.tmpfs_size}", *v.tmpfs_options))
