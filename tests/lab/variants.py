"""Static description of each lab variant: what differs between hardened, weak, token, firewall.

Contract: `VARIANTS[name]` is a frozen `Variant`; everything variant-specific in the lab is read
from here, so the seeded defects are visible in one place (and listed in defects/<variant>.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: tuple[str, ...] = ("registry", "proxy", "ci", "runtime", "outsider")
HOSTNAME = "registry.regaudit.test"
AUTH_HOSTNAME = "auth.regaudit.test"
DOMAIN = "regaudit.test"

# role -> (IPv4, IPv6); all on-link in 10.0.0.0/16 and fd00::/32 (one bridge).
ADDRESSES: dict[str, tuple[str, str]] = {
    "registry": ("10.0.0.10", "fd00::10"),
    "proxy": ("10.0.1.10", "fd00:0:1::10"),
    "ci": ("10.0.5.20", "fd00:0:5::20"),
    "runtime": ("10.0.10.30", "fd00:0:10::30"),
    "outsider": ("10.0.99.50", "fd00:0:99::50"),
}
V4_PREFIX = 16
V6_PREFIX = 32
# The guide's firewall example, and its IPv6 equivalent (docs/guide-notes.md#firewall-loopback-and-ipv6).
ALLOWED_V4: tuple[str, ...] = ("10.0.1.10/32", "10.0.5.0/24", "10.0.10.0/24")
ALLOWED_V6: tuple[str, ...] = ("fd00:0:1::10/128", "fd00:0:5::/64", "fd00:0:10::/64")

REGISTRY_PORT = 5000
DEBUG_ADDR = "127.0.0.1:5001"
NGINX_LISTEN = "127.0.0.1:8080"
TOKEN_PORT = 8443
WATCH_LISTEN = "127.0.0.1:9471"  # `regaudit watch serve` in the registry namespace (variant watch)
GUIDE_CIPHERS = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
GUIDE_PROTOCOLS = "-all +TLSv1.2 +TLSv1.3"
WEAK_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:@SECLEVEL=0"
)
WEAK_PROTOCOLS = "all"
# nginx spells protocols as a list (no +/-): the guide's pair, and the weak list.
NGINX_PROTOCOLS = "TLSv1.2 TLSv1.3"
NGINX_WEAK_PROTOCOLS = "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"
# The lab's OCSP responder (lab/ocsp_responder.py, registry namespace, loopback) that Apache staples
# from; the server certificates name it in their Authority Information Access extension.
OCSP_LISTEN = "127.0.0.1:8888"
HSTS = "max-age=63072000"  # two years, Mozilla's server-side TLS guidelines' hsts_min_age


@dataclass(frozen=True)
class Variant:
    """One lab flavour. `prefix` names its namespaces, so variants can run side by side."""

    name: str
    prefix: str
    content_profile: str
    registry_addrs: tuple[str, ...] = ("127.0.0.1:5000",)
    firewall: bool = True
    auth: str = "basic"  # basic | open (Location without Require valid-user) | token
    ssl_protocols: str = GUIDE_PROTOCOLS
    ssl_ciphers: str = GUIDE_CIPHERS
    cert_days: int = 365
    tmpfs_size: str = "512M"
    tmpfs_options: tuple[str, ...] = ("noexec", "nosuid")
    log_formatter: str = "json"
    nosniff: bool = True
    upload_purging: bool = True
    stale_uploads: bool = False
    nginx_body: str = "0"
    nginx_timeout: str = "900s"
    key_mode: int = 0o600
    htpasswd_mode: int = 0o640
    legacy_htpasswd_entry: bool = False
    containers: str | None = None  # "hardened" | "weak": registry and nginx in containers (tests/lab/containers.py)
    # Proxy shape: both (Apache TLS -> nginx -> registry, the lab's default), nginx (the registry's
    # documentation recipe: nginx terminates TLS with auth_basic) or apache (the guide's main path).
    proxies: str = "both"
    nginx_protocols: str = NGINX_PROTOCOLS
    nginx_auth_hole: bool = False  # `satisfy any; allow all;` in location /v2/
    nginx_api_version_header: bool = True  # the recipe's map + add_header ... always
    apache_limit_request_body: str | None = "0"  # None: unset (httpd's 1 GiB default)
    apache_proxy_timeout: str = "900"
    populate: bool = True  # False: a freshly deployed registry with nothing pushed

    @property
    def has_nginx(self) -> bool:
        return self.proxies in ("both", "nginx")

    @property
    def has_apache(self) -> bool:
        return self.proxies in ("both", "apache")
    notify: bool = False  # the registry's notifications go to a watcher on WATCH_LISTEN (issue 14)
    hsts: str = HSTS  # Strict-Transport-Security on every TLS response ("" = none)
    ocsp_stapling: bool = True  # Apache staples the lab OCSP responder's answer

    def ns(self, role: str) -> str:
        """Namespace name for a role (or 'switch')."""
        return f"{self.prefix}{role}"


VARIANTS: dict[str, Variant] = {
    "hardened": Variant(name="hardened", prefix="rgh-", content_profile="hardened"),
    "weak": Variant(
        name="weak",
        prefix="rgw-",
        content_profile="weak",
        registry_addrs=(":5000",),
        firewall=False,
        auth="open",
        ssl_protocols=WEAK_PROTOCOLS,
        ssl_ciphers=WEAK_CIPHERS,
        cert_days=10,
        tmpfs_size="64M",
        tmpfs_options=("nosuid",),
        log_formatter="text",
        nosniff=False,
        upload_purging=False,
        stale_uploads=True,
        nginx_body="10m",
        nginx_timeout="60s",
        key_mode=0o644,
        htpasswd_mode=0o644,
        legacy_htpasswd_entry=True,
        hsts="",
        ocsp_stapling=False,
    ),
    "token": Variant(name="token", prefix="rgt-", content_profile="token", auth="token"),
    # bench/speed.py scales this one to 10,011 tags (issue 15's benchmark); the shared hardened lab stays small.
    "speed": Variant(name="speed", prefix="rgp-", content_profile="hardened"),
    "firewall": Variant(
        name="firewall",
        prefix="rgf-",
        content_profile="firewall",
        registry_addrs=("10.0.0.10:5000", "[fd00::10]:5000"),
    ),
    # the registry and nginx as containers on a real Docker Engine; Apache on the host terminates TLS
    "container-hardened": Variant(name="container-hardened", prefix="rgc-", content_profile="hardened",
                                  containers="hardened"),
    "container-weak": Variant(name="container-weak", prefix="rgk-", content_profile="hardened",
                              containers="weak", registry_addrs=(":5000",)),
    # Issue 18: every proxy shape the guide allows, and a fresh empty registry.
    "nginx": Variant(name="nginx", prefix="rgn-", content_profile="hardened", proxies="nginx"),
    "nginx-weak": Variant(
        name="nginx-weak",
        prefix="rgm-",
        content_profile="hardened",
        proxies="nginx",
        nginx_protocols=NGINX_WEAK_PROTOCOLS,
        ssl_ciphers=WEAK_CIPHERS,
        key_mode=0o644,
        htpasswd_mode=0o644,
        nginx_auth_hole=True,
        nginx_api_version_header=False,
    ),
    "apache": Variant(name="apache", prefix="rga-", content_profile="hardened", proxies="apache"),
    "apache-weak": Variant(
        name="apache-weak",
        prefix="rgb-",
        content_profile="hardened",
        proxies="apache",
        auth="open",
        ssl_protocols=WEAK_PROTOCOLS,
        ssl_ciphers=WEAK_CIPHERS,
        key_mode=0o644,
        htpasswd_mode=0o644,
        apache_limit_request_body=None,
        apache_proxy_timeout="60",
    ),
    "empty": Variant(name="empty", prefix="rge-", content_profile="hardened", populate=False),
    # continuous mode: the registry's notifications endpoint is `regaudit watch serve` (tests/integration/test_watch_lab.py)
    "watch": Variant(name="watch", prefix="rgv-", content_profile="hardened", notify=True),
}


def get(name: str) -> Variant:
    """The variant called `name`; ValueError listing the known ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown lab variant {name!r}; known: {', '.join(VARIANTS)}") from None
