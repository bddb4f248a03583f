"""Processes read from /proc: command line, executable, parent, namespaces, environment.

Contract: every function is read-only and tolerant of processes that vanish while being read
(they are skipped, never raised). `proc` is the /proc root, a parameter so tests can point it
at a fixture tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PROC = "/proc"
# Environment variable names whose values never leave the host (the registry reads secrets
# such as REGISTRY_HTTP_SECRET or storage keys from its environment).
_SECRET_ENV = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
MASK = "<redacted>"


@dataclass(frozen=True)
class Process:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    comm: str
    argv: tuple[str, ...]
    exe: str | None
    netns: str | None
    mntns: str | None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def cmdline(self) -> str:
        """The command line, values of secret-looking options masked (--password=x, --token x)."""
        return " ".join(safe_argv(self.argv))


def safe_argv(argv: tuple[str, ...] | list[str]) -> list[str]:
    """argv with the values of options whose names look secret replaced by MASK."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        name, sep, _ = arg.partition("=")
        if arg.startswith("-") and _SECRET_ENV.search(name):
            if sep:
                out.append(f"{name}={MASK}")
            else:
                out.append(arg)
                mask_next = True
            continue
        out.append(arg)
    return out


def _read(path: str, limit: int = 1 << 20) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def pids(proc: str = PROC) -> list[int]:
    """Numeric entries of /proc, ascending."""
    try:
        return sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return []


def own_netns(proc: str = PROC) -> str | None:
    """The auditor's network namespace ("net:[inode]")."""
    return _readlink(f"{proc}/self/ns/net")


def netns_of(pid: int, proc: str = PROC) -> str | None:
    """The network namespace of `pid` ("net:[inode]"), None when unreadable."""
    return _readlink(f"{proc}/{pid}/ns/net")


def read_process(pid: int, proc: str = PROC, with_env: bool = False) -> Process | None:
    """The process `pid`, or None when it is gone or is a kernel thread (empty cmdline)."""
    base = f"{proc}/{pid}"
    raw_cmd = _read(f"{base}/cmdline")
    stat = _read(f"{base}/stat")
    if not raw_cmd or stat is None:
        return None
    argv = tuple(part.decode(errors="replace") for part in raw_cmd.rstrip(b"\0").split(b"\0"))
    text = stat.decode(errors="replace")
    comm = text[text.find("(") + 1 : text.rfind(")")]
    fields = text[text.rfind(")") + 2 :].split()
    ppid = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    env = environment(pid, proc) if with_env else {}
    return Process(
        pid=pid,
        ppid=ppid,
        comm=comm,
        argv=argv,
        exe=_readlink(f"{base}/exe"),
        netns=_readlink(f"{base}/ns/net"),
        mntns=_readlink(f"{base}/ns/mnt"),
        env=env,
    )


def processes(proc: str = PROC) -> Iterator[Process]:
    """Every user-space process."""
    for pid in pids(proc):
        found = read_process(pid, proc)
        if found is not None:
            yield found


def environment(pid: int, proc: str = PROC) -> dict[str, str]:
    """The process's initial environment, values of secret-looking names masked."""
    raw = _read(f"{proc}/{pid}/environ")
    out: dict[str, str] = {}
    for item in (raw or b"").split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep and name:
            out[name] = MASK if _SECRET_ENV.search(name) else value
    return out


def mask_env(pairs: dict[str, str]) -> dict[str, str]:
    """`pairs` with the values of secret-looking names masked."""
    return {k: (MASK if _SECRET_ENV.search(k) else v) for k, v in pairs.items()}


def cwd(pid: int, proc: str = PROC) -> str | None:
    return _readlink(f"{proc}/{pid}/cwd")


def root_path(pid: int, path: str, proc: str = PROC) -> str:
    """`path` as process `pid` sees it (through its root: its mount namespace and chroot)."""
    return str(Path(f"{proc}/{pid}/root") / path.lstrip("/"))


def socket_inodes(pid: int, proc: str = PROC) -> set[int]:
    """Inodes of the sockets process `pid` holds open (its fds reading `socket:[N]`)."""
    found: set[int] = set()
    fd_dir = f"{proc}/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return found
    for name in names:
        target = _readlink(f"{fd_dir}/{name}")
        if target and target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found
