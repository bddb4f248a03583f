"""A scripted raw-socket TLS peer: answers ClientHellos with ServerHellos for whatever it is told
to accept (SSLv2, SSLv3, suites the local OpenSSL lacks), or misbehaves on purpose.

It never completes a handshake: it answers the first flight (ServerHello, Certificate,
ServerHelloDone, or an alert) and closes, which is all a prober needs. Behaviours:
  "tls"        scripted TLS server (see PeerConfig)
  "junk"       answers any hello with an HTTP error page
  "reset"      closes with RST (SO_LINGER 0) as soon as the hello arrives
  "close"      closes cleanly without a byte
  "silent"     reads and never answers
  "trickle"    answers a valid ServerHello one byte every `trickle_interval` seconds
  "garbage"    sends 10 MB of random bytes
  "endless"    sends a handshake header announcing 16 MB, then 10 MB of handshake records
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
VERSIONS = {"SSLv3": 0x0300, "TLSv1.0": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


@dataclass
class ClientHello:
    """What the peer read from a client: enough to answer it, and for tests to inspect it."""

    record_version: int
    client_version: int
    random: bytes
    session_id: bytes
    suites: list[int]
    extensions: dict[int, bytes]

    @property
    def supported_versions(self) -> list[int]:
        data = self.extensions.get(43)
        if not data:
            return []
        return [int.from_bytes(data[1 + i:3 + i], "big") for i in range(0, data[0], 2)]

    @property
    def server_name(self) -> str | None:
        data = self.extensions.get(0)
        if not data:
            return None
        length = int.from_bytes(data[3:5], "big")
        return data[5:5 + length].decode("ascii")

    @property
    def key_share_groups(self) -> dict[int, bytes]:
        data = self.extensions.get(51)
        out: dict[int, bytes] = {}
        if not data:
            return out
        pos = 2
        while pos < len(data):
            group, length = struct.unpack_from("!HH", data, pos)
            out[group] = data[pos + 4:pos + 4 + length]
            pos += 4 + length
        return out


def parse_client_hello(record: bytes) -> ClientHello:
    """Parse a ClientHello record (one record, one message), as a server would."""
    ctype, record_version, length = struct.unpack_from("!BHH", record, 0)
    if ctype != 22:
        raise ValueError("not a handshake record")
    body = record[5:5 + length]
    if body[0] != 1:
        raise ValueError("not a ClientHello")
    pos = 4
    client_version = int.from_bytes(body[pos:pos + 2], "big")
    pos += 2
    random = body[pos:pos + 32]
    pos += 32
    sid_len = body[pos]
    session_id = body[pos + 1:pos + 1 + sid_len]
    pos += 1 + sid_len
    suites_len = int.from_bytes(body[pos:pos + 2], "big")
    suites = [int.from_bytes(body[pos + 2 + i:pos + 4 + i], "big") for i in range(0, suites_len, 2)]
    pos += 2 + suites_len
    pos += 1 + body[pos]
    extensions: dict[int, bytes] = {}
    if pos < len(body):
        end = pos + 2 + int.from_bytes(body[pos:pos + 2], "big")
        pos += 2
        while pos < end:
            ext_type, ext_len = struct.unpack_from("!HH", body, pos)
            extensions[ext_type] = body[pos + 4:pos + 4 + ext_len]
            pos += 4 + ext_len
    return ClientHello(record_version, client_version, random, session_id, suites, extensions)


def record(ctype: int, version: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", ctype, version, len(payload)) + payload


def handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + struct.pack("!I", len(body))[1:] + body


def server_hello(version: int, suite: int, session_id: bytes = b"", *, hrr: bool = False,
                 tls13: bool = False, group: int = 29) -> bytes:
    """A ServerHello (or HelloRetryRequest) handshake message."""
    random = HRR_RANDOM if hrr else os.urandom(32)
    legacy = 0x0303 if tls13 else version
    exts = b""
    if tls13:
        exts += struct.pack("!HHH", 43, 2, 0x0304)
        share = struct.pack("!H", group) if hrr else struct.pack("!HH", group, 32) + os.urandom(32)
        exts += struct.pack("!HH", 51, len(share)) + share
    body = (struct.pack("!H", legacy) + random + struct.pack("!B", len(session_id)) + session_id
            + struct.pack("!HB", suite, 0))
    if exts or version >= 0x0301:
        body += struct.pack("!H", len(exts)) + exts
    return handshake(2, body)


def certificate_message(ders: Sequence[bytes]) -> bytes:
    entries = b"".join(struct.pack("!I", len(d))[1:] + d for d in ders)
    return handshake(11, struct.pack("!I", len(entries))[1:] + entries)


def alert(description: int, version: int = 0x0303) -> bytes:
    return record(21, version, bytes([2, description]))


def sslv2_server_hello(specs: Sequence[int], certificate: bytes = b"") -> bytes:
    spec_bytes = b"".join(struct.pack("!I", s)[1:] for s in specs)
    conn_id = os.urandom(16)
    body = (struct.pack("!BBBHHHH", 4, 0, 1, 0x0002, len(certificate), len(spec_bytes), len(conn_id))
            + certificate + spec_bytes + conn_id)
    return struct.pack("!H", 0x8000 | len(body)) + body


@dataclass
class PeerConfig:
    """What the scripted peer accepts. `suites` maps a version to the codes it accepts, in its own
    preference order; `server_order` picks by that order, else by the client's."""

    behaviour: str = "tls"
    suites: dict[str, list[int]] = field(default_factory=dict)
    sslv2_specs: list[int] = field(default_factory=list)
    server_order: bool = True
    certificates: list[bytes] = field(default_factory=list)
    hrr: bool = False
    record_size: int = 200
    trickle_interval: float = 0.3
    close_instead_of_alert: bool = False


class ScriptedPeer:
    """Listens on 127.0.0.1 and ::1 (same port when possible); `hellos` records what came in."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.hellos: list[ClientHello] = []
        self.connections = 0
        self._servers: list[asyncio.base_events.Server] = []
        self.port = 0

    async def start(self, hosts: Sequence[str] = ("127.0.0.1",)) -> ScriptedPeer:
        for host in hosts:
            server = await asyncio.start_server(self._serve, host, self.port)
            self.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        return self

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()

    async def __aenter__(self) -> ScriptedPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()

    async def _read_hello(self, reader: asyncio.StreamReader) -> bytes:
        first = await reader.readexactly(2)
        if first[0] & 0x80:  # SSLv2 CLIENT-HELLO
            length = ((first[0] & 0x7F) << 8) | first[1]
            return first + await reader.readexactly(length)
        rest = await reader.readexactly(3)
        length = int.from_bytes(rest[1:3], "big")
        return first + rest + await reader.readexactly(length)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cfg = self.config
        data = await self._read_hello(reader)
        if cfg.behaviour == "silent":
            await asyncio.sleep(3600)
        if cfg.behaviour == "close":
            return
        if cfg.behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if cfg.behaviour == "junk":
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        if cfg.behaviour == "garbage":
            chunk = os.urandom(65536)
            for _ in range(160):
                writer.write(chunk)
                await writer.drain()
            return
        if cfg.behaviour == "endless":
            writer.write(record(22, 0x0303, b"\x02\xff\xff\xff"))
            for _ in range(640):
                writer.write(record(22, 0x0303, b"\0" * 16384))
                await writer.drain()
            return
        if data[0] & 0x80:
            answer = self._sslv2_answer()
        else:
            hello = parse_client_hello(data)
            self.hellos.append(hello)
            answer = self._tls_answer(hello)
        if cfg.behaviour == "trickle":
            for byte in answer:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(cfg.trickle_interval)
            return
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(0.01)

    def _sslv2_answer(self) -> bytes:
        if self.config.sslv2_specs:
            cert = self.config.certificates[0] if self.config.certificates else b""
            return sslv2_server_hello(self.config.sslv2_specs, cert)
        return b"" if self.config.close_instead_of_alert else alert(70, 0x0301)

    def _tls_answer(self, hello: ClientHello) -> bytes:
        cfg = self.config
        if 0x0304 in hello.supported_versions:
            version_name = "TLSv1.3"
        else:
            version_name = next((n for n, v in VERSIONS.items() if v == hello.client_version), "")
        accepted = cfg.suites.get(version_name)
        if not accepted:
            return b"" if cfg.close_instead_of_alert else alert(70)
        offered = hello.suites
        if cfg.server_order:
            choice = next((s for s in accepted if s in offered), None)
        else:
            choice = next((s for s in offered if s in accepted), None)
        if choice is None:
            return b"" if cfg.close_instead_of_alert else alert(40)
        version = VERSIONS[version_name]
        if version_name == "TLSv1.3":
            hrr = cfg.hrr and 29 not in hello.key_share_groups
            msg = server_hello(version, choice, hello.session_id, hrr=cfg.hrr or hrr, tls13=True,
                               group=24 if cfg.hrr else 29)
            return record(22, 0x0303, msg)
        flight = server_hello(version, choice, hello.session_id)
        if cfg.certificates:
            flight += certificate_message(cfg.certificates)
        flight += handshake(14, b"")
        size = max(1, cfg.record_size)
        return b"".join(record(22, version, flight[i:i + size]) for i in range(0, len(flight), size))
