"""Independent observations of a running lab (no regaudit code): TLS handshakes with openssl
s_client, HTTP with curl, TCP connects with nc, listeners with ss, mounts from /proc/<pid>/mountinfo,
firewall rules with iptables-save, nginx config through crossplane.

Contract: every function observes and returns facts; judging is done in selftest.py. Credentials
reach curl through a 0600 netrc file, never argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane

from .netns import run_in, sh
from .state import LabInfo


@dataclass(frozen=True)
class Handshake:
    ok: bool
    protocol: str
    cipher: str
    output: str


def tls_handshake(info: LabInfo, role: str, *flags: str, host: str | None = None) -> Handshake:
    """openssl s_client from `role` to the registry's :443 with extra flags (-tls1, -cipher ...)."""
    target = host or info.hostname
    argv = ["openssl", "s_client", "-connect", f"{target}:443", "-servername", info.hostname,
            "-CAfile", str(info.ca), "-brief", *flags]
    cp = run_in(info.ns(role), argv, input="", timeout=15)
    out = cp.stdout + cp.stderr
    proto = cipher = ""
    for line in out.splitlines():
        if line.startswith("Protocol version:"):
            proto = line.split(":", 1)[1].strip()
        elif line.startswith("Ciphersuite:"):
            cipher = line.split(":", 1)[1].strip()
    return Handshake(ok=cp.returncode == 0 and bool(proto), protocol=proto, cipher=cipher, output=out[-600:])


def peer_cert_text(info: LabInfo, role: str, *flags: str) -> str:
    """The served certificate as `openssl x509 -text` (chain verified against the lab CA)."""
    cp = run_in(info.ns(role), ["openssl", "s_client", "-connect", f"{info.hostname}:443", "-servername",
                                info.hostname, "-CAfile", str(info.ca), "-verify_return_error",
                                "-verify_hostname", info.hostname, "-showcerts", *flags],
                input="", timeout=15)
    if cp.returncode != 0:
        return ""
    x = sh(["openssl", "x509", "-noout", "-text", "-enddate"], input=cp.stdout, check=False)
    return x.stdout


@contextlib.contextmanager
def netrc(info: LabInfo, user: str | None = None) -> Iterator[Path]:
    """A temporary 0600 netrc with the lab user's credentials (removed afterwards)."""
    users = info["auth"]["users"]
    name = user or info.username
    password = Path(users[name]["password_file"]).read_text().strip()
    fd, path = tempfile.mkstemp(prefix="netrc-", dir=str(info.base_dir / "secrets"))
    try:
        with os.fdopen(fd, "w") as fh:
            for host in (info.hostname, "auth.regaudit.test"):
                fh.write(f"machine {host} login {name} password {password}\n")
        yield Path(path)
    finally:
        os.unlink(path)


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    body: str


def curl(info: LabInfo, role: str, url: str, *extra: str, netrc_file: Path | None = None,
         timeout: float = 20) -> HttpResult:
    """One HTTP request with curl from `role` (lab CA trusted); status 0 when it failed to connect."""
    argv = ["curl", "-sS", "-o", "-", "-D", "/dev/stderr", "--max-time", str(int(timeout)),
            "--cacert", str(info.ca), *extra, url]
    if netrc_file is not None:
        argv[1:1] = ["--netrc-file", str(netrc_file)]
    cp = run_in(info.ns(role), argv, timeout=timeout + 5)
    status = 0
    headers: dict[str, str] = {}
    for line in cp.stderr.splitlines():
        if line.startswith("HTTP/"):
            parts = line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            headers = {}
        elif ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return HttpResult(status, headers, cp.stdout)


def tcp_connect(info: LabInfo, role: str, host: str, port: int, wait: int = 2) -> bool:
    """True when a TCP connect from `role` to host:port completes within `wait` seconds."""
    cp = run_in(info.ns(role), ["nc", "-z", "-w", str(wait), host, str(port)], timeout=wait + 5)
    return cp.returncode == 0


@dataclass(frozen=True)
class Listener:
    local: str
    process: str


def listeners(info: LabInfo) -> list[Listener]:
    """TCP listening sockets in the registry namespace (ss -Htlnp)."""
    cp = run_in(info.ns("registry"), ["ss", "-Htlnp"], check=True)
    out = []
    for line in cp.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 4:
            proc = cols[5] if len(cols) > 5 else ""
            name = proc.split('"')[1] if '"' in proc else proc
            out.append(Listener(cols[3], name))
    return out


def listen_addrs(info: LabInfo, process: str) -> set[str]:
    """Local addresses `process` listens on (e.g. {'127.0.0.1:5000', '*:443'})."""
    return {lst.local for lst in listeners(info) if lst.process == process}


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    fstype: str
    options: set[str]
    super_options: dict[str, str]


def mounts_of(pid: int) -> list[Mount]:
    """Mounts as process `pid` sees them (/proc/<pid>/mountinfo)."""
    out = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        f = pre.split()
        g = post.split()
        sup = dict([*kv.split("=", 1), ""][:2] for kv in g[2].split(",")) if len(g) > 2 else {}
        out.append(Mount(f[4], g[0], set(f[5].split(",")), sup))
    return out


def mount_for(pid: int, path: str) -> Mount | None:
    """The mount holding `path` in `pid`'s mount namespace (longest mountpoint prefix)."""
    best: Mount | None = None
    for m in mounts_of(pid):
        mp = m.mountpoint.rstrip("/") or "/"
        if (path == mp or path.startswith(mp + "/") or mp == "/") and (
                best is None or len(mp) > len(best.mountpoint)):
            best = m
    return best


def size_bytes(text: str) -> int:
    """'524288k' / '512M' / '2G' / '123' -> bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower()
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def firewall(info: LabInfo, tool: str) -> list[str]:
    """`-A ...` lines of the filter table from iptables-save / ip6tables-save in the registry ns."""
    cp = run_in(info.ns("registry"), [f"{tool}-save", "-t", "filter"], check=True)
    return [line for line in cp.stdout.splitlines() if line.startswith("-A ")]


def nginx_directives(conf: str) -> dict[str, list[list[str]]]:
    """Every directive in the nginx config (includes followed) -> list of its argument lists."""
    parsed: dict[str, Any] = crossplane.parse(conf, combine=True)
    out: dict[str, list[list[str]]] = {}

    def walk(block: list[dict[str, Any]]) -> None:
        for d in block:
            out.setdefault(d["directive"], []).append(list(d.get("args", [])))
            if "block" in d:
                walk(d["block"])

    for cfg in parsed.get("config", []):
        walk(cfg.get("parsed", []))
    return out


def file_mode(path: str | Path) -> tuple[int, int, int]:
    """(mode bits, uid, gid) of a file."""
    st = os.stat(path)
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


@contextlib.contextmanager
def bearer_header(info: LabInfo, scope: str = "", user: str | None = None) -> Iterator[Path]:
    """A temporary 0600 curl header file `Authorization: Bearer <token>` from the lab's token
    service (the lab user's credentials, optional scope); the token never reaches argv."""
    tok = info["token"]
    url = f"{tok['realm']}?service={tok['service']}" + (f"&scope={scope}" if scope else "")
    with netrc(info, user) as nf:
        r = curl(info, "ci", url, netrc_file=nf)
    if r.status != 200:
        raise RuntimeError(f"token service answered {r.status}")
    body = json.loads(r.body)
    value = body.get("token") or body.get("access_token")
    fd, path = tempfile.mkstemp(prefix="hdr-", dir=str(info.base_dir / "secrets"))
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"Authorization: Bearer {value}\n")
        yield Path(path)
    finally:
        os.unlink(path)
