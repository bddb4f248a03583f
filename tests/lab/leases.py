"""Leases on a lab variant, shared by concurrent pytest sessions (tests/conftest.py).

Contract: `take(folder)` creates `<folder>/<pid>` and keeps it locked (flock, shared) until
`release(...)` or until the process dies: the kernel drops the lock then, so a lease left by a
killed session never counts as held, even once its process id belongs to another process.
`others_holding(folder)` lists the leases some other live holder still locks, removing the stale
ones on its way.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lease:
    path: Path
    fd: int


def take(folder: Path) -> Lease:
    """Lock, then name, this process's lease in `folder` (no one sees it unlocked while we live)."""
    folder.mkdir(parents=True, exist_ok=True)
    pending = folder / f".new-{os.getpid()}"
    fd = os.open(pending, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    path = folder / str(os.getpid())
    os.rename(pending, path)
    return Lease(path, fd)


def release(lease: Lease) -> None:
    lease.path.unlink(missing_ok=True)
    os.close(lease.fd)


def held(path: Path) -> bool:
    """Does a live holder lock the lease at `path`? A stale one (no lock) is removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)  # its session ended without removing it (killed)
    return False


def others_holding(folder: Path) -> list[Path]:
    """The leases in `folder` that another live holder keeps (call after releasing your own)."""
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.name.isdigit() and held(p)]
