"""How the recorded proxies stack (pure): whether an nginx server sits behind another proxy.

Contract: `behind_another_proxy(server, apache)` takes one `config.nginx` server entry and the
`config.apache` facts and returns why the server sits behind another proxy (which then owns TLS and
authentication), or None when clients reach it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from auditor.model import JSON


def _apache_in_front(server: Mapping[str, JSON], apache: JSON) -> str | None:
    """The Apache vhost that proxies /v2/ to one of this server's plaintext ports, if any."""
    vhost = apache.get("vhost") if isinstance(apache, dict) else None
    if not isinstance(vhost, dict):
        return None
    rule = vhost.get("v2_proxy_pass") or {}
    url = str(rule.get("url") or "")
    if not url.startswith("http://"):
        return None
    try:
        port = urlsplit(url).port or 80
    except ValueError:  # not a valid URL: no port to compare
        return None
    if any(lst.get("port") == port and not lst.get("ssl") for lst in server.get("listen") or []):
        return f"Apache's vhost at {vhost.get('where')} (ProxyPass {url})"
    return None


def behind_another_proxy(server: Mapping[str, JSON], apache: JSON) -> str | None:
    """Why this server sits behind another proxy (which owns TLS and authentication), or None when
    clients reach it directly (an ssl listener, or a non-loopback one nothing is known to front)."""
    if (server.get("tls") or {}).get("ssl_listeners"):
        return None
    listens = ", ".join(str(lst.get("raw")) for lst in server.get("listen") or [])
    front = _apache_in_front(server, apache)
    if front:
        return f"serves plaintext on {listens} behind {front}, which terminates TLS and authenticates"
    if all(lst.get("loopback") for lst in server.get("listen") or []):
        return f"listens only on loopback in plaintext ({listens}): it sits behind the proxy that terminates TLS"
    return None
