"""Hostile HTTP(S) servers on 127.0.0.1 for tests: real sockets, one thread per connection.

Contract: `HostileServer(behaviour, tls=None)` listens on an ephemeral loopback port once
started (use it as a context manager); `.url` is its base URL and `.requests` records every
request head it read (request line and headers, lower-case names), so tests can prove what a
client sent. Behaviours:
  redirect-offhost  every request -> 302 to `redirect_to` (another origin)
  basic-then-offhost  401 Basic unless Authorization is sent; with it, /v2/ -> 200 and every
                    other path -> 302 to `redirect_to`
  redirect-loop     /v2/ -> /v2/loop -> /v2/ ...
  garbage           10 MB of random bytes instead of an HTTP answer
  big-body          200 with a 10 MB body and the registry's API header
  slowloris         a status line, then one byte every 0.5 s, forever
  reset             the connection is reset (RST) as soon as the request arrives
  tls-junk          (plain TCP) junk bytes answer the TLS ClientHello
  record            200 {} for everything (records what it was sent)
  drop-reused       200 {} for the first request on a connection; a second request on the same
                    connection is read and the connection closed without an answer (an idle
                    keep-alive connection the server dropped just as the client reused it)
  injection         a registry whose every string is hostile (INJECTION: terminal escapes, HTML,
                    Markdown pipes, XML-invalid characters, bidi overrides): Server and
                    WWW-Authenticate headers, repository and tag names, error bodies (serve it
                    over TLS with make_cert(common_name=INJECTION) for a hostile subject too)
`stop()` closes the listener and every open connection; threads are daemons.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import struct
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GARBAGE_BYTES = 10 * 1024 * 1024
BEHAVIOURS = ("redirect-offhost", "basic-then-offhost", "redirect-loop", "garbage", "big-body", "slowloris",
              "reset", "tls-junk", "record", "drop-reused", "injection")
# What a hostile registry puts in every string it controls.
INJECTION = ("evil\x1b[31mRED\x1b]8;;http://x\x07link\x1b]8;;\x07\x1b[0m\x07\x08<script>alert(1)</script>"
             "<img src=x onerror=alert(2)>|cell|`code`*bold*]]>&amp;\x00\x0b\x0c\u202eevil\x9b2J\r\n## heading")
SUBJECT_INJECTION = "cn\x1b[2J<script>alert(3)</script>|c|`\u202e\x07"  # fits a CN (64 at most)


def make_cert(directory: Path, common_name: str = "regaudit hostile test") -> tuple[Path, Path]:
    """A self-signed EC certificate for 127.0.0.1 and localhost: (cert.pem = CA bundle, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regaudit hostile test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class HostileServer:
    """One misbehaving server; see the module docstring."""

    def __init__(self, behaviour: str, tls: tuple[Path, Path] | None = None, redirect_to: str = "") -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        self.redirect_to = redirect_to
        self.requests: list[dict[str, object]] = []
        self._context: ssl.SSLContext | None = None
        if tls:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(str(tls[0]), str(tls[1]))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileServer:
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn: socket.socket = raw
        try:
            raw.settimeout(10)
            if self.behaviour == "tls-junk":
                raw.recv(4096)
                raw.sendall(os.urandom(2048))
                return
            if self._context:
                conn = self._context.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._conns.append(conn)
            answered = 0
            while not self._stop.is_set():
                head = self._read_head(conn)
                if head is None or (self.behaviour == "drop-reused" and answered):
                    return
                if not self._answer(conn, head):
                    return
                answered += 1
        except (OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _read_head(self, conn: socket.socket) -> dict[str, object] | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk or len(data) > 65536:
                return None
            data += chunk
        head, _, _rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.rsplit(" ", 1)[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        request: dict[str, object] = {"method": method, "path": path, "headers": headers}
        with self._lock:
            self.requests.append(request)
        return request

    def _answer(self, conn: socket.socket, request: dict[str, object]) -> bool:
        """Answer one request; False closes the connection."""
        path = str(request["path"])
        headers = request["headers"]
        assert isinstance(headers, dict)
        b = self.behaviour
        if b == "redirect-offhost":
            return _send(conn, 302, {"Location": self.redirect_to + path})
        if b == "basic-then-offhost":
            if "authorization" not in headers:
                return _send(conn, 401, {"WWW-Authenticate": 'Basic realm="hostile"'})
            if path == "/v2/":
                return _send(conn, 200, {"Docker-Distribution-Api-Version": "registry/2.0"}, b"{}")
            return _send(conn, 302, {"Location": self.redirect_to + path})
        if b == "redirect-loop":
            return _send(conn, 302, {"Location": "/v2/loop" if path != "/v2/loop" else "/v2/"})
        if b == "garbage":
            sent = 0
            while sent < GARBAGE_BYTES and not self._stop.is_set():
                conn.sendall(os.urandom(65536))
                sent += 65536
            return False
        if b == "big-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nDocker-Distribution-Api-Version: registry/2.0\r\n"
                         + f"Content-Length: {GARBAGE_BYTES}\r\n\r\n".encode())
            sent = 0
            while sent < GARBAGE_BYTES and not self._stop.is_set():
                conn.sendall(b"x" * 65536)
                sent += 65536
            return True
        if b == "slowloris":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not self._stop.wait(0.5):
                conn.sendall(b"X")
            return False
        if b == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if b == "injection":
            return self._inject(conn, path, headers)
        return _send(conn, 200, {"Docker-Distribution-Api-Version": "registry/2.0",
                                 "Content-Type": "application/json"}, b"{}")


    def _inject(self, conn: socket.socket, path: str, headers: dict[str, str]) -> bool:
        hostile_header = "".join(c for c in INJECTION if c >= " " or c == "\t")  # HTTP allows no C0 controls
        common = {"Docker-Distribution-Api-Version": "registry/2.0", "Server": hostile_header,
                  "X-Hostile": hostile_header, "Content-Type": "application/json"}
        error = json.dumps({"errors": [{"code": "DENIED", "message": INJECTION, "detail": INJECTION}]}).encode()
        if "authorization" not in headers and path.startswith("/v2/"):
            return _send(conn, 401, {**common, "WWW-Authenticate": f'Basic realm="{hostile_header}"'}, error)
        if path == "/v2/":
            return _send(conn, 200, common, b"{}")
        if path.startswith("/v2/_catalog"):
            names = [f"app/{INJECTION}", "ok/app", "<b>bold</b>/x"]
            return _send(conn, 200, common, json.dumps({"repositories": names}).encode())
        if path.split("?")[0].endswith("/tags/list"):
            return _send(conn, 200, common, json.dumps({"name": "x", "tags": [INJECTION, "v1|2", "<i>t</i>"]}).encode())
        return _send(conn, 404, common, error)


def _send(conn: socket.socket, status: int, headers: dict[str, str], body: bytes = b"") -> bool:
    reason = {200: "OK", 302: "Found", 401: "Unauthorized", 404: "Not Found"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return True
