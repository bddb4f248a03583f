"""How the walker sends its thousands of small GETs: a `Fetcher`.

Contract: `await fetcher.fetch(method, url, headers, max_body)` returns a BoundedResponse (body
read up to `max_body`, `truncated` set beyond it) or raises ProbeError with a short reason that
never carries credentials; redirects are never followed. Two implementations:

- `PoolFetcher`, the audit's: HTTP/1.1 on the lean keep-alive pool of `auditor.h11pool`, and
  HTTP/2 through httpcore (httpx's engine, multiplexed) for an origin whose server selects h2 in
  ALPN. Per request the HTTP/1.1 path costs a fraction of the client CPU of an httpx.AsyncClient
  (bench/http_client.py), which is what the walk competes with when the proxy shares the cores.
- `HttpxFetcher`: any httpx.AsyncClient (several, round-robin); used where a caller already has
  one, and by tests that script a registry with httpx.MockTransport.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpcore
import httpx

from auditor.errors import ProbeError
from auditor.h11pool import H11Pool, Origin, PrefersHTTP2, split_url
from auditor.httpclient import USER_AGENT, BoundedResponse, bounded_request, read_bounded, safe_url, short_reason


class Fetcher(Protocol):
    async def fetch(self, method: str, url: str, headers: dict[str, str], max_body: int) -> BoundedResponse:
        """One request; see the module contract."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...

    def describe(self) -> dict[str, Any]:
        """What carried the requests, for the evidence (client, connections, HTTP/2 origins)."""
        ...


class HttpxFetcher:
    """Requests through httpx.AsyncClient(s), round-robin."""

    def __init__(self, clients: httpx.AsyncClient | Sequence[httpx.AsyncClient]) -> None:
        self.clients = [clients] if isinstance(clients, httpx.AsyncClient) else list(clients)
        self._next = itertools.cycle(self.clients)

    async def fetch(self, method: str, url: str, headers: dict[str, str], max_body: int) -> BoundedResponse:
        return await bounded_request(next(self._next), method, url, headers=headers, max_body=max_body)

    def describe(self) -> dict[str, Any]:
        return {"client": "httpx", "clients": len(self.clients)}

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


class PoolFetcher:
    """HTTP/1.1 on H11Pool; HTTP/2 on an httpcore pool for origins that select h2 (see module doc)."""

    def __init__(self, ssl_factory: Callable[[], ssl.SSLContext], *, max_connections: int = 32,
                 timeout: float = 15.0) -> None:
        self._ssl_factory = ssl_factory
        self._timeout = timeout
        self.http1 = H11Pool(ssl_factory, max_connections=max_connections, timeout=timeout, offer_h2=True)
        self.http2_origins: set[Origin] = set()
        self._http2: httpcore.AsyncConnectionPool | None = None

    async def fetch(self, method: str, url: str, headers: dict[str, str], max_body: int) -> BoundedResponse:
        origin, _, _ = split_url(method, url)
        if origin not in self.http2_origins:
            try:
                return await self.http1.request(method, url, headers, max_body)
            except PrefersHTTP2:
                self.http2_origins.add(origin)
        return await self._fetch_http2(method, url, headers, max_body)

    async def _fetch_http2(self, method: str, url: str, headers: dict[str, str], max_body: int) -> BoundedResponse:
        if self._http2 is None:
            # A handful of multiplexed connections carry all requests in flight.
            self._http2 = httpcore.AsyncConnectionPool(ssl_context=self._ssl_factory(), http1=True, http2=True,
                                                       max_connections=4)
        timeouts = {"connect": min(self._timeout, 10.0), "read": self._timeout, "write": self._timeout,
                    "pool": self._timeout}
        _, authority, _ = split_url(method, url)
        sent = [("Host", authority), ("User-Agent", USER_AGENT), *headers.items()]
        try:
            async with self._http2.stream(method, url, headers=sent, extensions={"timeout": timeouts}) as response:
                body, truncated = await read_bounded(response.aiter_stream(), max_body)
                version = response.extensions.get("http_version", b"HTTP/2")
                return BoundedResponse(response.status, httpx.Headers(response.headers), body, truncated, url,
                                       version.decode("ascii", "replace"))
        except httpcore.TimeoutException as exc:
            raise ProbeError(f"{method} {safe_url(url)}: timed out ({type(exc).__name__})") from None
        except (httpcore.ProtocolError, httpcore.NetworkError, httpcore.UnsupportedProtocol) as exc:
            raise ProbeError(f"{method} {safe_url(url)}: {type(exc).__name__}: {short_reason(exc)}") from None
        except (ssl.SSLError, OSError) as exc:
            raise ProbeError(f"{method} {safe_url(url)}: {type(exc).__name__}: {short_reason(exc)}") from None

    def describe(self) -> dict[str, Any]:
        return {"client": "h11 keep-alive pool (HTTP/1.1), httpcore (HTTP/2)",
                "http1_connections_opened": self.http1.connections_opened,
                "http2_origins": sorted(f"{scheme}://{host}:{port}" for scheme, host, port in self.http2_origins)}

    async def aclose(self) -> None:
        await self.http1.aclose()
        if self._http2 is not None:
            await self._http2.aclose()
