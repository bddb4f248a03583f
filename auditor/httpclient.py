"""A defensive HTTP client for probes: bounded bodies, deadlines, no credential leaks.

Redirects are never followed automatically: a probe that follows one does it hop by hop, sending
credentials only where :func:`same_origin` holds.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from auditor.errors import ProbeError

DEFAULT_MAX_BODY = 4 * 1024 * 1024
USER_AGENT = "regaudit"


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying TLS context: the system store, or the given CA bundle."""
    try:
        return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError(f"cannot load CA bundle {ca_bundle}: {exc}") from None


def make_client(
    ca_bundle: str | None = None,
    timeout: float = 15.0,
    max_connections: int = 32,
    http2: bool = True,
    verify: bool = True,
) -> httpx.AsyncClient:
    """An AsyncClient with a bounded pool, per-operation timeouts and no automatic redirects."""
    return httpx.AsyncClient(
        verify=ssl_context(ca_bundle) if verify else False,
        http2=http2,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


@dataclass(frozen=True)
class BoundedResponse:
    """A response whose body was read up to a limit."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    url: str
    http_version: str


async def bounded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    headers: dict[str, str] | None = None,
    auth: httpx.Auth | None = None,
    content: bytes | None = None,
    total_timeout: float | None = None,
) -> BoundedResponse:
    """Send one request and read at most `max_body` bytes of the answer.

    Network failures become ProbeError with a short reason (never the credentials).
    `total_timeout` bounds the whole exchange (a server trickling bytes defeats per-read timeouts).
    """
    if total_timeout is None:
        return await _bounded(client, method, url, max_body, headers, auth, content)
    if total_timeout <= 0:
        raise ProbeError(f"{method} {safe_url(url)}: no time left before the deadline")
    try:
        async with asyncio.timeout(total_timeout):
            return await _bounded(client, method, url, max_body, headers, auth, content)
    except TimeoutError:
        raise ProbeError(f"{method} {safe_url(url)}: no complete answer within {total_timeout:.1f}s") from None


async def _bounded(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    max_body: int,
    headers: dict[str, str] | None,
    auth: httpx.Auth | None,
    content: bytes | None,
) -> BoundedResponse:
    try:
        async with client.stream(method, url, headers=headers, auth=auth, content=content) as response:
            if response.is_stream_consumed:
                # Already read in memory (an httpx.Response built with content=, as MockTransport
                # handlers return): bound what is kept, there is nothing left to stream.
                body = response.content
                return BoundedResponse(response.status_code, response.headers, body[:max_body],
                                       len(body) > max_body, str(response.url), response.http_version)
            body, truncated = await read_bounded(response.aiter_raw(), max_body)
            if not truncated and response.headers.get("content-encoding"):
                body = _decode(response, body)
            return BoundedResponse(response.status_code, response.headers, body, truncated,
                                   str(response.url), response.http_version)
    except httpx.TimeoutException as exc:
        raise ProbeError(f"{method} {safe_url(url)}: timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise ProbeError(f"{method} {safe_url(url)}: {type(exc).__name__}: {short_reason(exc)}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ProbeError(f"{method} {safe_url(url)}: {type(exc).__name__}: {short_reason(exc)}") from None


async def read_bounded(chunks: AsyncIterator[bytes], max_body: int) -> tuple[bytes, bool]:
    """Read a streamed body up to `max_body` bytes: (body, truncated). Stops reading past the limit."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_body:
            parts.append(chunk[: max(0, max_body - (size - len(chunk)))])
            return b"".join(parts), True
        parts.append(chunk)
    return b"".join(parts), False


def _decode(response: httpx.Response, body: bytes) -> bytes:
    decoder = response._get_content_decoder()
    try:
        return decoder.decode(body) + decoder.flush()
    except httpx.DecodingError:
        return body


def safe_url(url: str) -> str:
    """`url` without credentials and query, for messages."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None, query=None))


def short_reason(exc: BaseException) -> str:
    """An exception as at most 200 characters, for messages."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def same_origin(a: str, b: str) -> bool:
    ua, ub = httpx.URL(a), httpx.URL(b)
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)

