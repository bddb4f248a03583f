"""`net.registry-port`: is the registry's own port reachable from where the auditor runs?

Facts only: for every address the target host resolves to (IPv4 and IPv6), the TCP state of the
registry port (open, closed, filtered, unreachable, error) and, where it is open, what an
anonymous plain-HTTP GET /v2/ answers there (is it a registry, does it demand auth).
"""

from __future__ import annotations

import asyncio

from auditor.errors import ProbeError
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

from ._outside import (
    budget,
    plain_get,
    plain_v2_endpoint,
    registry_port,
    require_url,
    resolve,
)


async def _address(ctx: ProbeContext, address: str, family: JSON, port: int) -> dict[str, JSON]:
    entry = await plain_v2_endpoint(ctx, address, family, port)
    answer = entry.get("http")
    if isinstance(answer, dict):
        headers = answer.get("headers") or {}
        entry["registry_answers"] = isinstance(headers, dict) and "docker-distribution-api-version" in headers
        entry["auth_required"] = answer.get("status") == 401
    return entry
    try:
        answer = await plain_get(ctx.http(), address, port, str(ctx.target.host), "/v2/", budget(ctx))
    except ProbeError as exc:
        entry["http_error"] = str(exc)
        return entry
    headers = answer.get("headers") or {}
    entry["http"] = answer
    entry["registry_answers"] = isinstance(headers, dict) and "docker-distribution-api-version" in headers
    entry["auth_required"] = answer.get("status") == 401
    return entry


@probe("net.registry-port", shape=shapes.NetRegistryPort, timeout=45.0)
async def registry_port_probe(ctx: ProbeContext) -> JSON:
    """TCP reachability of the registry's own port on every address of the target host."""
    require_url(ctx)
    host = str(ctx.target.host)
    port = registry_port(ctx)
    addresses = await resolve(host, port, budget(ctx, 5.0))
    results = await asyncio.gather(*(_address(ctx, str(a["address"]), a["family"], port) for a in addresses))
    return {
        "host": host,
        "port": port,
        "port_source": "--registry-port" if ctx.target.options.get("registry_port") else "default (5000)",
        "families": sorted({str(a["family"]) for a in addresses}),
        "addresses": list(results),
    }
