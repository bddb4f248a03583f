"""Real local TLS servers for integration tests and benchmarks: `openssl s_server` and nginx with
its own temporary config, on loopback only, stopped by their own PID."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from .pki import issue, make_pki

HARDENED_CIPHERS = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"


@dataclass
class LocalPki:
    """A CA bundle and RSA/ECDSA server certificates (chain files) for `localhost`, 127.0.0.1, ::1."""

    ca: Path
    rsa_cert: Path
    rsa_key: Path
    ec_cert: Path
    ec_key: Path
    intermediate: Path


def write_pki(workdir: Path) -> LocalPki:


    pki = make_pki()
    now = dt.datetime.now(dt.UTC)
    names = {"dns": ("localhost",), "ips": ("127.0.0.1", "::1"), "not_before": now - dt.timedelta(days=1),
             "days": 200}
    rsa_leaf = issue("localhost", pki.intermediate, key=rsa.generate_private_key(65537, 2048), **names)  # type: ignore[arg-type]
    ec_leaf = issue("localhost", pki.intermediate, **names)  # type: ignore[arg-type]
    workdir.mkdir(parents=True, exist_ok=True)
    out = LocalPki(workdir / "ca.pem", workdir / "rsa.pem", workdir / "rsa.key", workdir / "ec.pem", workdir / "ec.key",
                   workdir / "intermediate.pem")
    out.ca.write_text(pki.root.pem)
    out.intermediate.write_text(pki.intermediate.pem)
    out.rsa_cert.write_text(rsa_leaf.pem + pki.intermediate.pem)
    out.ec_cert.write_text(ec_leaf.pem + pki.intermediate.pem)
    out.rsa_key.write_bytes(rsa_leaf.key_pem())
    out.ec_key.write_bytes(ec_leaf.key_pem())
    os.chmod(out.rsa_key, 0o600)
    os.chmod(out.ec_key, 0o600)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def s_server(pki: LocalPki, args: Sequence[str], *, ecdsa: bool = False) -> Iterator[int]:
    """`openssl s_server` on 127.0.0.1 with extra `args` (e.g. -cipher, -tls1_2); yields the port."""
    port = free_port()
    cert, key = (pki.ec_cert, pki.ec_key) if ecdsa else (pki.rsa_cert, pki.rsa_key)
    argv = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
            "-cert_chain", str(pki.intermediate), "-www", "-quiet", "-naccept", "100000", *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port("127.0.0.1", port)
        yield port
    finally:
        _stop(proc)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl{http2};
        listen [::1]:{port} ssl{http2};
        server_name localhost;
        ssl_certificate {rsa_cert};
        ssl_certificate_key {rsa_key};
        ssl_certificate {ec_cert};
        ssl_certificate_key {ec_key};
        ssl_protocols {protocols};
        ssl_ciphers {ciphers};
        ssl_prefer_server_ciphers on;
        {extra}
        location / {{ {location} }}
    }}
}}
"""


def _location(root: Path | None, proxy_to: str | None) -> str:
    if proxy_to:
        return f"proxy_pass {proxy_to}; proxy_http_version 1.1; proxy_set_header Connection \"\";"
    return f"root {root};" if root else 'return 200 "ok\\n";'


def nginx_available() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


@contextmanager
def nginx(pki: LocalPki, workdir: Path, *, protocols: str = "TLSv1.2 TLSv1.3",
          ciphers: str = HARDENED_CIPHERS, http2: bool = False, root: Path | None = None,
          extra: str = "", proxy_to: str | None = None) -> Iterator[int]:
    """nginx with its own config on 127.0.0.1 and [::1] (RSA and ECDSA certificates); yields the port.

    It answers "ok" to everything, serves the files under `root`, or proxies to `proxy_to` (a URL);
    `http2` adds HTTP/2 (ALPN h2);
    `extra` is added to the server block (keepalive_requests 2;, ...)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, rsa_cert=pki.rsa_cert, rsa_key=pki.rsa_key,
                                      ec_cert=pki.ec_cert, ec_key=pki.ec_key, protocols=protocols,
                                      ciphers=ciphers, http2=" http2" if http2 else "", extra=extra,
                                      location=_location(root, proxy_to)))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(workdir)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port("127.0.0.1", port)
        wait_port("::1", port)
        yield port
    finally:
        _stop(proc)
