"""Helpers shared by the outside probes: budgets, name resolution, TCP reachability, exchange facts.

Contract: every network step here is bounded in time; facts are JSON and never hold a credential
(no request headers are recorded, only the status and selected response headers).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Any

import httpx

from auditor.errors import NotApplicable, ProbeError
from auditor.httpclient import BoundedResponse, bounded_request, same_origin
from auditor.judge.rtt import ConnectTimeouts, RttEstimator, filtered_detail, whole_wait
from auditor.model import JSON
from auditor.probeapi import ProbeContext
from auditor.regauth import challenges_of

REQUEST_TIMEOUT = 10.0
DEFAULT_REGISTRY_PORT = 5000
PROBE_REPOSITORY = "regaudit-probe/anonymous-check"
PROBE_TAG = "latest"
RECORDED_HEADERS = (
    "docker-distribution-api-version",
    "x-content-type-options",
    "strict-transport-security",
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


def reference_ports(ctx: ProbeContext) -> tuple[int, ...]:
    """Ports whose answers give the RTT a connect timeout follows: the target URL's port."""
    return (ctx.target.port,) if ctx.target.port else ()


def connect_timeouts(ctx: ProbeContext) -> ConnectTimeouts:
    """The audit's connect-timeout setting (`--connect-timeout FLOOR:CEILING` in milliseconds,
    `--syn-retransmit`); the defaults when none was given."""
    value = ctx.target.options.get("connect_timeout")
    if isinstance(value, dict):
        return ConnectTimeouts.from_json(value)
    return ConnectTimeouts()


async def _connect_once(family: int, sockaddr: tuple[Any, ...], timeout: float) -> tuple[str, str, float]:
    """One non-blocking TCP connect: (outcome, reason, seconds). Outcome: open, closed, silent (no
    answer within `timeout`), unreachable or error. The socket is read once more at the deadline, so
    an answer that arrived while the event loop was busy still counts."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    started = loop.time()
    answered: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not answered.done():
            answered.set_result(None)

    try:
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
            return (*_errno_outcome(code), loop.time() - started)
        if code == 0:
            return "open", "connection accepted", loop.time() - started
        loop.add_writer(sock.fileno(), wake)
        try:
            await asyncio.wait_for(asyncio.shield(answered), timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_writer(sock.fileno())
        elapsed = loop.time() - started
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            return (*_errno_outcome(code), elapsed)
        try:
            sock.getpeername()
        except OSError:
            return "silent", "no answer", elapsed
        return "open", "connection accepted", elapsed
    finally:
        sock.close()


def _errno_outcome(code: int) -> tuple[str, str]:
    reason = os.strerror(code)
    if code == errno.ECONNREFUSED:
        return "closed", "connection refused"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return "unreachable", reason
    return "error", f"OSError: {reason}"


def _sockaddr(address: str, port: int) -> tuple[int, tuple[Any, ...]]:
    if ":" in address:
        return socket.AF_INET6, (address, port, 0, 0)
    return socket.AF_INET, (address, port)


async def measure_rtt(address: str, ports: list[int], bounds: ConnectTimeouts, budget_s: float,
                      samples: int = 3) -> RttEstimator:
    """RTT samples from `samples` concurrent connects to each port of `ports` on `address` (every
    answer counts: accepted or refused), each waited for up to the ceiling; ports that do not answer
    add nothing."""
    estimator = RttEstimator(bounds)
    limit = min(bounds.ceiling, budget_s)
    jobs = [_connect_once(*_sockaddr(address, port), limit) for port in ports for _ in range(samples)]
    for outcome, _reason, seconds in await asyncio.gather(*jobs):
        if outcome in ("open", "closed"):
            estimator.add(seconds)
    return estimator


async def tcp_state(address: str, port: int, timeout: float, *, reference_ports: tuple[int, ...] = (),
                    bounds: ConnectTimeouts | None = None) -> dict[str, JSON]:
    """Whether a TCP connection to address:port completes: open, closed (refused), filtered (no answer
    to two attempts), unreachable (no route), or error (anything else, with the reason).

    The timeout T follows the round-trip time measured on connections to `reference_ports` of the
    same address (those that answered): srtt + 4 rttvar within the bounds. A first connect waits T;
    when it is silent a second one starts, and both stay open until `whole_wait` (2 T; with
    `bounds.syn_retransmit`, until the first SYN's kernel retransmission plus T, so that a dropped
    SYN a slow listener answers on retransmission is still seen). `timeout` caps the whole (the
    audit's budget)."""
    bounds = bounds or ConnectTimeouts()
    loop = asyncio.get_running_loop()
    started = loop.time()
    others = [p for p in dict.fromkeys(reference_ports) if p != port]
    estimator = await measure_rtt(address, others, bounds, timeout) if others else RttEstimator(bounds)
    left = timeout - (loop.time() - started)
    facts: dict[str, JSON] = {"rtt_ms": None if estimator.srtt is None else round(estimator.srtt * 1000, 3),
                              "rtt_samples": estimator.samples}
    if left <= 0.05:
        return {"state": "error", "detail": "no time left to try a connection", **facts, "attempts": 0,
                "timeouts_ms": [], "seconds": round(loop.time() - started, 3)}
    first_wait = min(estimator.timeout(), left / 2)
    whole = min(whole_wait(first_wait, bounds), left)
    family, sockaddr = _sockaddr(address, port)
    attempts = [asyncio.ensure_future(_connect_once(family, sockaddr, whole))]
    done, _pending = await asyncio.wait(attempts, timeout=first_wait)
    if not done:
        attempts.append(asyncio.ensure_future(_connect_once(family, sockaddr, whole - first_wait)))
    outcome, reason, seconds = "silent", "no answer", 0.0
    pending: set[asyncio.Future[tuple[str, str, float]]] = set(attempts)
    while pending:
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        answers = [f.result() for f in finished if f.result()[0] != "silent"]
        if answers:
            outcome, reason, seconds = answers[0]
            break
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if outcome in ("open", "closed"):
        estimator.add(seconds)
    facts.update(attempts=len(attempts), timeouts_ms=[round(first_wait * 1000, 1), round(whole * 1000, 1)],
                 seconds=round(loop.time() - started, 3))
    if outcome == "silent":
        return {"state": "filtered", "detail": filtered_detail(whole, first_wait, estimator.srtt), **facts}
    return {"state": outcome, "detail": reason, **facts}


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


async def plain_v2_endpoint(ctx: ProbeContext, address: str, family: JSON, port: int) -> dict[str, JSON]:
    """address:port's TCP state and, when open, an anonymous plain-HTTP GET /v2/ with the target's
    Host header: `http` (the exchange) or `http_error` (why it failed)."""
    entry: dict[str, JSON] = {"address": address, "family": family, "port": port}
    entry.update(await tcp_state(address, port, budget(ctx), reference_ports=reference_ports(ctx),
                                bounds=connect_timeouts(ctx)))
    if entry["state"] != "open":
        return entry
    try:
        entry["http"] = await plain_get(ctx.http(), address, port, ctx.target.host or address, "/v2/", budget(ctx))
    except ProbeError as exc:
        entry["http_error"] = str(exc)
    return entry
