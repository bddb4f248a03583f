"""Mounts as one process sees them (/proc/PID/mountinfo), fstab entries, and path resolution.

Contract: `parse_mountinfo(text)` and `parse_fstab(text)` are pure; `mount_for(mounts, path)`
picks the mount a path lives on (the deepest mount point covering it; the last one mounted on a
mount point wins, as the kernel stacks them). `statvfs_facts(path)` is read-only.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from auditor.model import JSON

SECURITY_FLAGS = ("noexec", "nosuid", "nodev", "ro")
_OCTAL = re.compile(r"\\([0-7]{3})")
_SIZE = re.compile(r"^(\d+)([kmgtKMGT%]?)$")


def unescape(field: str) -> str:
    """mountinfo and fstab escape space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo."""

    mount_id: int
    parent_id: int
    root: str
    mountpoint: str
    options: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def flags(self) -> list[str]:
        """The per-mount security flags set (noexec, nosuid, nodev, ro)."""
        return [f for f in SECURITY_FLAGS if f in self.options]

    def super_option(self, name: str) -> str | None:
        for opt in self.super_options:
            key, _, value = opt.partition("=")
            if key == name:
                return value
        return None

    def to_json(self) -> dict[str, JSON]:
        return {
            "mount_id": self.mount_id,
            "mountpoint": self.mountpoint,
            "root": self.root,
            "fstype": self.fstype,
            "source": self.source,
            "options": list(self.options),
            "super_options": list(self.super_options),
            "flags": self.flags,
        }


def parse_mountinfo(text: str) -> list[Mount]:
    """Every well-formed line of a mountinfo file, in order."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        cols, tail = left.split(), right.split()
        if len(cols) < 6 or len(tail) < 2:
            continue
        mounts.append(
            Mount(
                mount_id=int(cols[0]),
                parent_id=int(cols[1]),
                root=unescape(cols[3]),
                mountpoint=unescape(cols[4]),
                options=tuple(cols[5].split(",")),
                fstype=tail[0],
                source=unescape(tail[1]),
                super_options=tuple(tail[2].split(",")) if len(tail) > 2 else (),
            )
        )
    return mounts


def _covers(mountpoint: str, path: str) -> bool:
    return mountpoint == "/" or path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")


def mount_for(mounts: list[Mount], path: str) -> Mount | None:
    """The mount `path` (absolute, normalised) lives on."""
    path = posixpath.normpath(path)
    best: Mount | None = None
    for mount in mounts:
        if _covers(mount.mountpoint, path) and (best is None or len(mount.mountpoint) >= len(best.mountpoint)):
            best = mount
    return best


@dataclass(frozen=True)
class FstabEntry:
    spec: str
    file: str
    vfstype: str
    options: tuple[str, ...]
    line: int

    @property
    def flags(self) -> list[str]:
        return [f for f in SECURITY_FLAGS if f in self.options]

    def option(self, name: str) -> str | None:
        for opt in self.options:
            key, _, value = opt.partition("=")
            if key == name:
                return value
        return None

    def to_json(self) -> dict[str, JSON]:
        return {"spec": self.spec, "file": self.file, "vfstype": self.vfstype, "options": list(self.options),
                "flags": self.flags, "line": self.line}


def parse_fstab(text: str) -> list[FstabEntry]:
    """Entries of an fstab (comments and malformed lines skipped)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cols = stripped.split()
        if len(cols) < 3:
            continue
        options = tuple(cols[3].split(",")) if len(cols) > 3 else ("defaults",)
        out.append(FstabEntry(unescape(cols[0]), posixpath.normpath(unescape(cols[1])), cols[2], options, number))
    return out


def size_bytes(text: str | None, memory_bytes: int | None = None) -> int | None:
    """A tmpfs size option ("65536k", "2G", "512M", "50%") in bytes; None when absent/unknown."""
    if not text:
        return None
    match = _SIZE.match(text.strip())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2).lower()
    if unit == "%":
        return number * memory_bytes // 100 if memory_bytes else None
    return number * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str:
    """`path` with symlinks resolved as a process whose root is `root` sees it (an absolute link
    target restarts from that root, not the auditor's). Missing components are kept as written."""
    parts = [p for p in posixpath.normpath(path).split("/") if p]
    resolved = "/"
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            resolved = posixpath.dirname(resolved)
            continue
        candidate = posixpath.join(resolved, name)
        full = os.path.join(root, candidate.lstrip("/"))
        if os.path.islink(full) and hops < max_links:
            hops += 1
            target = os.readlink(full)
            parts = [p for p in target.split("/") if p and p != "."] + parts
            if target.startswith("/"):
                resolved = "/"
            continue
        resolved = candidate
    return resolved


def statvfs_facts(path: str) -> dict[str, JSON]:
    """Size, used and available bytes of the filesystem holding `path` (as df computes them)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bfree * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = total - free
    return {"total_bytes": total, "used_bytes": used, "free_bytes": free, "available_bytes": avail,
            "inodes_total": st.f_files, "inodes_free": st.f_ffree}


def memory_bytes(proc: str = "/proc") -> int | None:
    """MemTotal, for tmpfs sizes given in percent."""
    try:
        with open(f"{proc}/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None
