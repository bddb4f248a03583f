"""Helpers shared by the outside probes: budgets, name resolution, TCP reachability, exchange facts.

Contract: every network step here is bounded in time; facts are JSON and never hold a credential
(no request headers are recorded, only the status and selected response headers).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import httpx

from auditor.errors import NotApplicable, ProbeError
from auditor.httpclient import BoundedResponse, bounded_request, same_origin
from auditor.model import JSON
from auditor.probeapi import ProbeContext
from auditor.regauth import challenges_of

REQUEST_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0
DEFAULT_REGISTRY_PORT = 5000
PROBE_REPOSITORY = "regaudit-probe/anonymous-check"
PROBE_TAG = "latest"
RECORDED_HEADERS = (
    "docker-distribution-api-version",
    "x-content-type-options",
    "content-type",
    "location",
    "server",
)


def require_url(ctx: ProbeContext) -> str:
    """The target's base URL; NotApplicable when none was given."""
    if not ctx.target.url or not ctx.target.host:
        raise NotApplicable("no registry URL given: the outside checks need one")
    return ctx.target.url


def budget(ctx: ProbeContext, cap: float = REQUEST_TIMEOUT) -> float:
    """Seconds one network step may take: `cap`, or less when the audit's deadline is near."""
    left = ctx.remaining() - 0.5
    if left <= 0.2:
        raise ProbeError("no time left before the audit's deadline")
    return min(cap, left)


def registry_port(ctx: ProbeContext) -> int:
    value = ctx.target.options.get("registry_port")
    return int(value) if value else DEFAULT_REGISTRY_PORT


async def resolve(host: str, port: int, timeout: float) -> list[dict[str, JSON]]:
    """Every address `host` resolves to: [{"address", "family": "ipv4"|"ipv6"}], in resolver order."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise ProbeError(f"resolving {host} took longer than {timeout:.1f}s") from None
    except OSError as exc:
        raise ProbeError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    seen: list[dict[str, JSON]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        name = "ipv6" if family == socket.AF_INET6 else "ipv4"
        if all(item["address"] != address for item in seen):
            seen.append({"address": address, "family": name})
    if not seen:
        raise ProbeError(f"{host} resolves to no address")
    return seen


async def tcp_state(address: str, port: int, timeout: float) -> dict[str, JSON]:
    """Whether a TCP connection to address:port completes: open, closed (refused), filtered
    (no answer within `timeout`), unreachable (no route), or error (anything else, with the reason)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(address, port)
        state, detail = "open", "connection accepted"
    except TimeoutError:
        state, detail = "filtered", f"no answer within {timeout:.1f}s"
    except ConnectionRefusedError:
        state, detail = "closed", "connection refused"
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            state, detail = "unreachable", exc.strerror or str(exc)
        else:
            state, detail = "error", f"{type(exc).__name__}: {exc.strerror or exc}"
    finally:
        if writer is not None:
            writer.close()
            try:
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            except (TimeoutError, OSError):
                pass
    return {"state": state, "detail": detail, "seconds": round(loop.time() - started, 3)}


def url_for(scheme: str, address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}{path}"


def host_header(host: str, port: int, scheme: str) -> str:
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def exchange_facts(method: str, path: str, response: BoundedResponse) -> dict[str, JSON]:
    """JSON facts about one response: status, challenges and selected headers (never request headers)."""
    headers: dict[str, Any] = {}
    for name in RECORDED_HEADERS:
        values = response.headers.get_list(name)
        if values:
            headers[name] = values[0] if len(values) == 1 else values
    return {
        "method": method,
        "path": path,
        "status": response.status_code,
        "challenges": [c.to_json() for c in challenges_of(response)],
        "headers": headers,
        "http_version": response.http_version,
        "body_truncated": response.truncated,
    }


async def same_origin_get(
    client: httpx.AsyncClient,
    url: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    auth: httpx.Auth | None = None,
    max_hops: int = 5,
    max_body: int = 1024 * 1024,
) -> tuple[BoundedResponse, list[str], str | None]:
    """GET `url`, following redirects only within its origin; never contacts another origin.

    Returns the last response, the chain of URLs fetched and, when the last response redirects
    elsewhere, the Location it names (not fetched). A loop or too many hops raises ProbeError.
    """
    chain = [url]
    current = url
    for _ in range(max_hops + 1):
        response = await bounded_request(client, "GET", current, max_body=max_body, headers=headers,
                                         auth=auth, total_timeout=timeout)
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return response, chain, None
        try:
            nxt = str(httpx.URL(current).join(location))
        except (httpx.InvalidURL, ValueError):
            return response, chain, location[:300]
        if not same_origin(nxt, url):
            return response, chain, nxt
        if nxt in chain:
            raise ProbeError(f"redirect loop after {len(chain)} hop(s) at {httpx.URL(nxt).path}")
        chain.append(nxt)
        current = nxt
    raise ProbeError(f"more than {max_hops} redirects from {httpx.URL(url).path}")


async def plain_get(
    client: httpx.AsyncClient, address: str, port: int, host: str, path: str, timeout: float
) -> dict[str, JSON]:
    """Anonymous plain-HTTP GET of `path` on address:port with the target's Host header (no redirects)."""
    response = await bounded_request(client, "GET", url_for("http", address, port, path), max_body=65536,
                                     headers={"Host": host_header(host, port, "http")}, total_timeout=timeout)
    return exchange_facts("GET", path, response)
