"""Listening TCP sockets from the kernel (/proc/net/tcp and tcp6), mapped to their processes.

Contract: `listening(proc)` reads the tables of the reading process's network namespace
(/proc/self/net), keeps state 0A (LISTEN), and attributes each socket to every process in the
same namespace holding its inode open. Read-only; vanished processes are skipped.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from auditor.host import procfs
from auditor.model import JSON

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Socket:
    """One listening socket: family table (tcp / tcp6), address, port, inode, owner uid."""

    table: str
    address: str
    port: int
    inode: int
    uid: int

    @property
    def loopback(self) -> bool:
        addr = ipaddress.ip_address(self.address)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            return addr.ipv4_mapped.is_loopback
        return addr.is_loopback

    @property
    def endpoint(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


def decode_address(hex_addr: str, byteorder: str = sys.byteorder) -> str:
    """An address as /proc/net/tcp{,6} prints it (32-bit words in host byte order) -> text."""
    raw = bytes.fromhex(hex_addr)
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return f"::ffff:{addr.ipv4_mapped}"
    return str(addr)


def parse_table(text: str, table: str, byteorder: str = sys.byteorder) -> list[Socket]:
    """The LISTEN rows of one /proc/net/tcp or tcp6 table."""
    out = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != TCP_LISTEN:
            continue
        addr_hex, _, port_hex = cols[1].partition(":")
        out.append(
            Socket(
                table=table,
                address=decode_address(addr_hex, byteorder),
                port=int(port_hex, 16),
                inode=int(cols[9]),
                uid=int(cols[7]),
            )
        )
    return out


def _listening(net_dir: str) -> list[Socket]:
    """Listening sockets of the tcp and tcp6 tables under `net_dir` (a /proc/.../net); an unreadable
    table adds none."""
    found: list[Socket] = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{net_dir}/{table}", encoding="ascii", errors="replace") as handle:
                found += parse_table(handle.read(), table)
        except OSError:
            continue
    return found


def read_tables(proc: str = procfs.PROC) -> list[Socket]:
    """Listening sockets of the auditor's own network namespace."""
    return _listening(f"{proc}/self/net")


def owners(inodes: Iterable[int], proc: str = procfs.PROC) -> dict[int, list[dict[str, JSON]]]:
    """inode -> processes (pid, comm, exe) in the auditor's namespace holding it open (no command
    lines: an unrelated listener's arguments may hold secrets)."""
    wanted = set(inodes)
    mine = procfs.own_netns(proc)
    out: dict[int, list[dict[str, JSON]]] = {}
    for pid in procfs.pids(proc):
        if procfs.netns_of(pid, proc) != mine:  # cheap filter before listing the fds
            continue
        held = procfs.socket_inodes(pid, proc) & wanted
        if not held:
            continue
        process = procfs.read_process(pid, proc)
        if process is None or process.netns != mine:
            continue
        for inode in held:
            out.setdefault(inode, []).append(
                {"pid": process.pid, "comm": process.comm, "exe": process.exe}
            )
    return out


def listening(proc: str = procfs.PROC) -> list[dict[str, JSON]]:
    """JSON facts: every listening socket with its processes, sorted by port then address."""
    sockets = read_tables(proc)
    by_inode = owners((s.inode for s in sockets), proc)
    rows = []
    for sock in sorted(sockets, key=lambda s: (s.port, s.table, s.address)):
        rows.append(
            {
                "table": sock.table,
                "address": sock.address,
                "port": sock.port,
                "endpoint": sock.endpoint,
                "loopback": sock.loopback,
                "inode": sock.inode,
                "uid": sock.uid,
                "processes": sorted(by_inode.get(sock.inode, []), key=lambda p: int(p["pid"])),
            }
        )
    return rows


def of_process(pid: int, proc: str = procfs.PROC) -> list[dict[str, JSON]]:
    """Listening sockets process `pid` holds, read in its own network namespace (/proc/PID/net):
    a container's sockets, seen from the host. [] when the process is gone or unreadable."""
    held = procfs.socket_inodes(pid, proc)
    found = _listening(f"{proc}/{pid}/net")
    return [{"endpoint": s.endpoint, "address": s.address, "port": s.port, "loopback": s.loopback}
            for s in sorted(found, key=lambda s: (s.port, s.table, s.address)) if s.inode in held]
