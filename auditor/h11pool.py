"""A lean HTTP/1.1 keep-alive client on h11 and asyncio protocols: the content walker's hot path.

Why: the walker sends tens of thousands of small GETs, on the same cores as the proxy it audits
in small deployments. Per request, this client costs about a third of the CPU of httpcore's
pool and a quarter of an httpx.AsyncClient (bench/http_client.py prints the figures): no anyio
cancel scopes and locks, no per-request URL and header models, one write per request, one
future per read. The protocol work is h11's (the parser httpcore itself uses).

Contract: `await pool.request(method, url, headers, max_body)` returns a BoundedResponse or raises
ProbeError with a short reason (never credentials): each read waits at most `timeout`, the
whole exchange at most `total_timeout` (a server trickling bytes). Redirects are not followed.
Connections are kept per origin and reused while the server keeps them open; at most
`max_connections` are open at once (more callers wait). A connection is reused only after a complete answer; a truncated
body, an error, a timeout or a cancellation closes it. A GET or HEAD on a reused connection that
fails before any byte of the answer arrived is retried once on a new connection (the server
closed the idle connection: the keep-alive race). With `offer_h2`, TLS offers ALPN h2 and
http/1.1; a server that picks h2 gets its connection closed and `PrefersHTTP2` raised, so the
caller can use an HTTP/2 client for that origin.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import h11
import httpx

from auditor.errors import ProbeError
from auditor.httpclient import USER_AGENT, BoundedResponse, safe_url, short_reason

HIGH_WATER = 256 * 1024
MAX_HEADER_BYTES = 64 * 1024
Origin = tuple[str, str, int]


class PrefersHTTP2(Exception):
    """The server selected h2 in ALPN: use an HTTP/2 client for this origin."""


class _Stream(asyncio.Protocol):
    """What one connection received: a buffer, EOF, the error; one waiting reader at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self, timeout: float) -> bytes:
        """What arrived (waiting up to `timeout` seconds for something); b"" at EOF."""
        if not self.buffer and not self.eof:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError:
                raise ProbeError(f"no data within {timeout:.0f}s") from None
            finally:
                self.waiter = None
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
            return data
        if self.error is not None:
            raise ProbeError(f"connection lost: {short_reason(self.error)}")
        return b""


class _Connection:
    """One keep-alive connection and its h11 state machine."""

    def __init__(self, origin: Origin, transport: asyncio.Transport, stream: _Stream) -> None:
        self.origin = origin
        self.transport = transport
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.reused = False
        self.received = False

    def reusable(self) -> bool:
        """Idle on both sides, and the server has neither closed it nor sent anything unasked."""
        return (self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE
                and not self.stream.buffer and not self.stream.eof and not self.transport.is_closing())

    def close(self) -> None:
        self.transport.close()

    async def exchange(self, method: str, target: str, headers: list[tuple[str, str]], max_body: int,
                       timeout: float) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool, str]:
        """Send one request, read its answer: (status, headers, body, truncated, http version)."""
        self.received = False
        try:
            data = ((self.h11.send(h11.Request(method=method, target=target, headers=headers)) or b"")
                    + (self.h11.send(h11.EndOfMessage()) or b""))
        except h11.LocalProtocolError as exc:
            raise ProbeError(f"cannot send this request: {exc}") from None
        if self.transport.is_closing():
            raise ProbeError("connection closed")
        self.transport.write(data)
        event = await self._next_event(timeout)
        while isinstance(event, h11.InformationalResponse):
            event = await self._next_event(timeout)
        if not isinstance(event, h11.Response):
            raise ProbeError(f"unexpected {type(event).__name__} instead of a response")
        status, version = event.status_code, f"HTTP/{event.http_version.decode('ascii', 'replace')}"
        response_headers = list(event.headers)
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(timeout)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_body:
                    chunks.append(event.data[: max(0, max_body - (size - len(event.data)))])
                    return status, response_headers, b"".join(chunks), True, version
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ProbeError("connection closed in the middle of the answer")
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return status, response_headers, b"".join(chunks), False, version

    async def _next_event(self, timeout: float) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProbeError(f"malformed HTTP answer: {short_reason(exc)}") from None
            if event is not h11.NEED_DATA:
                return event
            data = await self.stream.read(timeout)
            if data:
                self.received = True
            elif not self.received:
                raise ProbeError("connection closed before any answer")
            try:
                self.h11.receive_data(data)
            except h11.RemoteProtocolError as exc:
                raise ProbeError(f"malformed HTTP answer: {short_reason(exc)}") from None


def split_url(method: str, url: str) -> tuple[Origin, str, str]:
    """(origin, Host header value, request target) of an http(s) URL; ProbeError when it is not one."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ProbeError(f"{method} {safe_url(url)}: invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"{method} {safe_url(url)}: not an http(s) URL")
    default = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    authority = host if port in (None, default) else f"{host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port or default), authority, target


class H11Pool:
    """Keep-alive HTTP/1.1 connections per origin (see the module contract)."""

    def __init__(self, ssl_factory: Callable[[], ssl.SSLContext], *, max_connections: int = 32,
                 timeout: float = 15.0, connect_timeout: float = 10.0, total_timeout: float = 60.0,
                 offer_h2: bool = False) -> None:
        self._ssl = ssl_factory()
        self._ssl.set_alpn_protocols(["h2", "http/1.1"] if offer_h2 else ["http/1.1"])
        self._slots = asyncio.Semaphore(max_connections)
        self._max = max_connections
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.connections_opened = 0

    async def request(self, method: str, url: str, headers: dict[str, str], max_body: int) -> BoundedResponse:
        origin, authority, target = split_url(method, url)
        sent = [("Host", authority), ("User-Agent", USER_AGENT), *headers.items()]
        async with self._slots:
            for attempt in (0, 1):
                connection = await self._acquire(origin, fresh=attempt > 0, method=method, url=url)
                try:
                    async with asyncio.timeout(self.total_timeout):
                        status, raw_headers, body, truncated, version = await connection.exchange(
                            method, target, sent, max_body, self.timeout)
                except TimeoutError:
                    self._discard(connection)
                    raise ProbeError(f"{method} {safe_url(url)}: no complete answer within "
                                     f"{self.total_timeout:.0f}s") from None
                except ProbeError as exc:
                    self._discard(connection)
                    if attempt == 0 and connection.reused and not connection.received and method in ("GET", "HEAD"):
                        continue
                    raise ProbeError(f"{method} {safe_url(url)}: {exc}") from None
                except BaseException:
                    self._discard(connection)
                    raise
                if truncated or not connection.reusable():
                    self._discard(connection)
                else:
                    self._idle.setdefault(origin, []).append(connection)
                return BoundedResponse(status, httpx.Headers(raw_headers), body, truncated, url, version)
        raise AssertionError("unreachable")

    async def _acquire(self, origin: Origin, *, fresh: bool, method: str, url: str) -> _Connection:
        idle = self._idle.get(origin)
        while idle and not fresh:
            connection = idle.pop()
            if connection.reusable():
                connection.reused = True
                return connection
            self._discard(connection)
        if self._open >= self._max:
            self._close_one_idle()
        return await self._connect(origin, method, url)

    async def _connect(self, origin: Origin, method: str, url: str) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                transport, stream = await loop.create_connection(
                    _Stream, host, port, ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None)
        except TimeoutError:
            raise ProbeError(f"{method} {safe_url(url)}: no connection within {self.connect_timeout:.0f}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise ProbeError(f"{method} {safe_url(url)}: {type(exc).__name__}: {short_reason(exc)}") from None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            transport.close()
            raise PrefersHTTP2(f"{host}:{port}")
        self._open += 1
        self.connections_opened += 1
        return _Connection(origin, cast(asyncio.Transport, transport), stream)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1

    def _close_one_idle(self) -> None:
        for idle in self._idle.values():
            if idle:
                self._discard(idle.pop(0))
                return

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                self._discard(idle.pop())
