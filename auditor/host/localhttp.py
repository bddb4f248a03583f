"""A minimal HTTP/1.1 GET to this host only: a loopback TCP listener or a unix socket (Docker's).

Inside probes talk to the registry's debug listener and the Docker Engine API, both on the audited
host. This standard-library client keeps the inside gathering free of any HTTP package, so the
gather-only zipapp runs on a host with nothing but python3. Bodies are bounded; every failure is an
OSError (LocalHTTPError for protocol errors).
"""

from __future__ import annotations

import asyncio
import http.client
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

USER_AGENT = "regaudit"


class LocalHTTPError(OSError):
    """The peer spoke something that is not HTTP/1.x, or sent more than allowed."""


@dataclass(frozen=True)
class LocalResponse:
    status: int
    body: bytes
    truncated: bool

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _get(conn: http.client.HTTPConnection, path: str, max_body: int, truncate: bool) -> LocalResponse:
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "application/json, */*"})
        response = conn.getresponse()
        body = response.read(max_body + 1)
    except http.client.HTTPException as exc:
        raise LocalHTTPError(f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if len(body) > max_body and not truncate:
        raise LocalHTTPError(f"response larger than {max_body} bytes")
    return LocalResponse(response.status, body[:max_body], len(body) > max_body)


async def get_url(url: str, timeout: float, max_body: int, truncate: bool = True) -> LocalResponse:
    """GET an http:// URL (a listener of this host; the caller decides which addresses qualify)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LocalHTTPError(f"not a plain http URL: {url}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    path = parts.path or "/"
    return await asyncio.wait_for(asyncio.to_thread(_get, conn, path, max_body, truncate), timeout + 1)


async def get_unix(socket_path: str, path: str, timeout: float, max_body: int) -> LocalResponse:
    """GET `path` from the HTTP server on a unix socket (the whole body, at most `max_body` bytes)."""
    conn = _UnixConnection(socket_path, timeout)
    return await asyncio.wait_for(asyncio.to_thread(_get, conn, path, max_body, False), timeout + 1)
