"""One handshake attempt on a fresh TCP connection: send a hello, classify the server's answer.

Contract: `attempt` and `attempt_sslv2` never raise (except cancellation); every failure is a
`HelloResult` with a status and a reason. They stop reading as soon as the answer is decided,
after `max_bytes`, or when `timeout` (which covers connect, write and every read) expires.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from auditor.tlsprobe import records as rec
from auditor.tlsprobe.records import WireError

# statuses
ACCEPTED = "accepted"  # the server answered with a ServerHello (or HRR) for the offered version
REFUSED = "refused"    # the server refused with an alert, or negotiated another version
CLOSED = "closed"      # the server closed or reset the connection without a TLS answer
ERROR = "error"        # no TLS answer could be judged: timeout, junk, connect failure, ...


@dataclass
class HelloResult:
    """The server's answer to one hello."""

    status: str
    reason: str = ""
    version: str | None = None
    suite: int | None = None
    hello_retry: bool = False
    certificates: list[bytes] = field(default_factory=list)
    sslv2_specs: tuple[int, ...] = ()
    bytes_read: int = 0
    elapsed: float = 0.0
    status_request_echoed: bool | None = None
    ocsp_response: bytes | None = None
    ocsp_error: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


@dataclass
class Counter:
    """Counts TCP connections opened (shared by one scan)."""

    connections: int = 0


async def _open(address: str, port: int, counter: Counter | None) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:
    if counter is not None:
        counter.connections += 1
    reader, writer = await asyncio.open_connection(address, port, limit=2**16)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.transport.abort()


def _connect_error(exc: OSError) -> HelloResult:
    if isinstance(exc, ConnectionRefusedError):
        return HelloResult(ERROR, "connect: connection refused")
    return HelloResult(ERROR, f"connect: {exc.strerror or type(exc).__name__}")


async def attempt(address: str, port: int, version: str, suites: Sequence[int],
                  server_name: str | None = None, *, timeout: float = 5.0,
                  want_certificate: bool = False, max_bytes: int = 2**18,
                  counter: Counter | None = None, status_request: bool = False) -> HelloResult:
    """Offer `suites` in a `version` ClientHello and classify the answer.

    With `want_certificate`, keeps reading a TLS <= 1.2 flight until ServerHelloDone and returns
    the Certificate message's DER list. With `status_request`, the hello asks for a stapled OCSP
    response; the result says whether the ServerHello echoed the extension and carries the
    CertificateStatus message's OCSP response when the server sent one.
    """
    hello = rec.build_client_hello(version, suites, server_name, status_request=status_request)
    return await _exchange(address, port, hello, lambda reader: _read_answer(reader, version, want_certificate,
                                                                             max_bytes), timeout, counter)


async def _read_answer(reader: asyncio.StreamReader, version: str, want_certificate: bool,
                       max_bytes: int) -> HelloResult:
    buffer = b""
    total = 0
    handshake = rec.HandshakeBuffer()
    hello: rec.ServerHello | None = None
    certificates: list[bytes] = []
    stapled: list[bytes | str] = []

    def judged(note: str = "") -> HelloResult:
        assert hello is not None
        result = _judge_hello(hello, version, total, certificates, note=note)
        result.status_request_echoed = rec.EXT_STATUS_REQUEST in hello.extensions
        for item in stapled:
            if isinstance(item, bytes):
                result.ocsp_response = item
            else:
                result.ocsp_error = item
        return result

    while True:
        chunk = await reader.read(2**16)
        if not chunk:
            if hello is not None:
                return judged("closed before ServerHelloDone")
            if total == 0:
                return HelloResult(CLOSED, "connection closed without an answer", bytes_read=0)
            return HelloResult(ERROR, f"truncated answer: connection closed after {total} bytes",
                               bytes_read=total)
        total += len(chunk)
        buffer += chunk
        try:
            records, buffer = rec.parse_records(buffer)
        except WireError as exc:
            return HelloResult(ERROR, f"junk answer: {exc}", bytes_read=total)
        for record in records:
            if record.content_type == rec.CT_ALERT:
                if hello is not None:
                    return judged()
                try:
                    _, _, name = rec.parse_alert(record.fragment)
                except WireError as exc:
                    return HelloResult(ERROR, f"junk answer: {exc}", bytes_read=total)
                return HelloResult(REFUSED, f"alert {name}", bytes_read=total)
            if record.content_type != rec.CT_HANDSHAKE:
                if hello is not None:
                    return judged()
                return HelloResult(ERROR, f"unexpected record type {record.content_type} "
                                   "before ServerHello", bytes_read=total)
            for msg_type, body in handshake.feed(record.fragment):
                if hello is None:
                    if msg_type != rec.HS_SERVER_HELLO:
                        return HelloResult(ERROR, f"unexpected handshake message {msg_type} "
                                           "before ServerHello", bytes_read=total)
                    try:
                        hello = rec.parse_server_hello(body)
                    except WireError as exc:
                        return HelloResult(ERROR, f"malformed ServerHello: {exc}", bytes_read=total)
                    if not want_certificate or hello.version >= 0x0304 \
                            or hello.is_hello_retry_request:
                        return judged()
                elif msg_type == rec.HS_CERTIFICATE:
                    try:
                        certificates = rec.parse_certificate_list(body)
                    except WireError as exc:
                        return judged(str(exc))
                elif msg_type == rec.HS_CERTIFICATE_STATUS:
                    try:
                        stapled.append(rec.parse_certificate_status(body))
                    except WireError as exc:
                        stapled.append(str(exc))
                elif msg_type == rec.HS_SERVER_HELLO_DONE:
                    return judged()
        if total >= max_bytes:
            if hello is not None:
                return judged(f"stopped reading after {total} bytes")
            return HelloResult(ERROR, f"no ServerHello in the first {total} bytes",
                               bytes_read=total)


def _judge_hello(hello: rec.ServerHello, offered: str, total: int, certificates: list[bytes],
                 note: str = "") -> HelloResult:
    negotiated = rec.VERSION_NAMES.get(hello.version, f"0x{hello.version:04X}")
    hrr = hello.is_hello_retry_request
    if negotiated == offered:
        reason = "HelloRetryRequest" if hrr else "ServerHello"
        if note:
            reason += f" ({note})"
        return HelloResult(ACCEPTED, reason, negotiated, hello.cipher_suite, hrr, certificates,
                           bytes_read=total)
    if rec.VERSION_CODES.get(offered, 0) > hello.version:
        return HelloResult(REFUSED, f"server negotiated {negotiated} instead", negotiated,
                           hello.cipher_suite, hrr, bytes_read=total)
    return HelloResult(ERROR, f"server answered {negotiated}, higher than the offered {offered}",
                       negotiated, hello.cipher_suite, hrr, bytes_read=total)


async def attempt_sslv2(address: str, port: int, *, timeout: float = 5.0,
                        max_bytes: int = 2**16, counter: Counter | None = None) -> HelloResult:
    """Send an SSLv2 CLIENT-HELLO; ACCEPTED only for an SSLv2 SERVER-HELLO with cipher specs.

    A TLS alert or handshake in answer is a refusal (the server does not speak SSLv2).
    """
    return await _exchange(address, port, rec.build_sslv2_client_hello(),
                           lambda reader: _read_sslv2(reader, max_bytes), timeout, counter)


async def _exchange(address: str, port: int, hello: bytes,
                    read: Callable[[asyncio.StreamReader], Awaitable[HelloResult]],
                    timeout: float, counter: Counter | None) -> HelloResult:
    """Connect, send `hello`, classify the answer with `read`; every failure is a HelloResult reason."""
    start = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    result: HelloResult
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await _open(address, port, counter)
            except OSError as exc:
                return _connect_error(exc)
            writer.write(hello)
            await writer.drain()
            result = await read(reader)
    except TimeoutError:
        result = HelloResult(ERROR, f"timeout after {timeout:.1f}s")
    except ConnectionResetError:
        result = HelloResult(CLOSED, "connection reset by peer")
    except (BrokenPipeError, ConnectionError) as exc:
        result = HelloResult(CLOSED, f"connection lost: {type(exc).__name__}")
    except OSError as exc:
        result = HelloResult(ERROR, f"socket error: {exc.strerror or type(exc).__name__}")
    except Exception as exc:  # a prober bug must not take the scan down: it is a reason too
        result = HelloResult(ERROR, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        _close(writer)
    result.elapsed = time.monotonic() - start
    return result


async def _read_sslv2(reader: asyncio.StreamReader, max_bytes: int) -> HelloResult:
    buffer = b""
    while True:
        chunk = await reader.read(2**16)
        if not chunk:
            if not buffer:
                return HelloResult(CLOSED, "connection closed without an answer")
            return HelloResult(ERROR, f"truncated answer: closed after {len(buffer)} bytes",
                               bytes_read=len(buffer))
        buffer += chunk
        if buffer[0] in (rec.CT_ALERT, rec.CT_HANDSHAKE) and len(buffer) >= 3 \
                and buffer[1] == 3:
            if buffer[0] == rec.CT_ALERT:
                return HelloResult(REFUSED, "answered with a TLS alert, not SSLv2",
                                   bytes_read=len(buffer))
            return HelloResult(ERROR, "answered an SSLv2 hello with a TLS handshake record",
                               bytes_read=len(buffer))
        if not buffer[0] & 0x80:
            return HelloResult(ERROR, f"junk answer: first byte 0x{buffer[0]:02x} is neither "
                               "TLS nor an SSLv2 header", bytes_read=len(buffer))
        if len(buffer) >= 3 and buffer[2] == 0:
            return HelloResult(REFUSED, "SSLv2 ERROR message", bytes_read=len(buffer))
        if len(buffer) >= 3 and buffer[2] != 4:
            return HelloResult(ERROR, f"junk answer: SSLv2 message type {buffer[2]}",
                               bytes_read=len(buffer))
        length = rec.sslv2_record_length(buffer)
        if length is not None and len(buffer) >= length:
            try:
                hello = rec.parse_sslv2_server_hello(buffer[:length])
            except WireError as exc:
                return HelloResult(ERROR, f"junk answer: {exc}", bytes_read=len(buffer))
            if not hello.cipher_specs:
                return HelloResult(REFUSED, "SSLv2 SERVER-HELLO without cipher specs",
                                   bytes_read=len(buffer))
            return HelloResult(ACCEPTED, "SSLv2 SERVER-HELLO", "SSLv2", None,
                               certificates=[hello.certificate] if hello.certificate else [],
                               sslv2_specs=hello.cipher_specs, bytes_read=len(buffer))
        if len(buffer) >= max_bytes or (length is not None and length > max_bytes):
            return HelloResult(ERROR, f"junk answer: no SSLv2 SERVER-HELLO in {len(buffer)} bytes",
                               bytes_read=len(buffer))
