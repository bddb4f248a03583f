"""`registry.debug-health`: GET /debug/health on the registry's debug server (docs/guide-notes.md#registry-health).

Only an address of this host is contacted: loopback, or an address one of this namespace's own
sockets listens on (from `host.sockets`); an all-interfaces debug address is reached on loopback.
"""

from __future__ import annotations

from typing import Any

from auditor.errors import NotApplicable
from auditor.host.localhttp import get_url
from auditor.judge import shapes
from auditor.judge.netaddr import parse_listen
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

MAX_BODY = 4096
DEBUG_ENV = "REGISTRY_HTTP_DEBUG_ADDR"


def health_url(debug_addr: str, local_addresses: set[str]) -> tuple[str | None, str]:
    """(URL to GET, why) or (None, why not) for a debug address."""
    listen = parse_listen(debug_addr)
    if listen is None or listen.port is None:
        return None, f"http.debug.addr {debug_addr!r} is not host:port"
    host = listen.host.strip("[]")
    if listen.all_interfaces:
        host = "127.0.0.1"
    elif not listen.loopback and host not in local_addresses:
        return None, f"{host} is not loopback nor an address this host listens on: not contacted"
    if host.lower() in ("localhost", "localhost."):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{listen.port}/debug/health", "debug server address"


@probe("registry.debug-health", shape=shapes.RegistryDebugHealth, timeout=15.0)
async def debug_health(ctx: ProbeContext) -> JSON:
    """Status and body of /debug/health on the registry's debug listener (this host only)."""
    if not ctx.target.inside:
        raise NotApplicable("inside vantage not requested")
    facts: Any = await ctx.evidence("config.registry")
    http = ((facts or {}).get("config") or {}).get("http") or {}
    debug = http.get("debug") if isinstance(http, dict) else None
    addr = debug.get("addr") if isinstance(debug, dict) else None
    try:
        found: Any = await ctx.evidence("host.discovery")
        override = (((found or {}).get("registry") or {}).get("env_overrides") or {}).get(DEBUG_ENV)
    except Exception:  # discovery only refines the address
        override = None
    if override:
        addr = override
    if not addr:
        raise NotApplicable("no debug server configured (http.debug.addr is not set)")
    try:
        sockets = (await ctx.evidence("host.sockets"))["sockets"]
    except Exception:  # only needed for a non-loopback debug address
        sockets = []
    url, why = health_url(str(addr), {str(s["address"]) for s in sockets})
    if url is None:
        return {"debug_addr": addr, "reachable": False, "reason": why}
    try:
        response = await get_url(url, timeout=5.0, max_body=MAX_BODY)
    except (OSError, TimeoutError) as exc:
        return {"debug_addr": addr, "url": url, "reachable": False, "reason": f"{type(exc).__name__}: {exc}"}
    return {"debug_addr": addr, "url": url, "reachable": True, "status": response.status,
            "healthy": response.status == 200, "body": response.text()[:MAX_BODY]}
