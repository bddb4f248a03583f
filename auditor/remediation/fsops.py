"""File operations apply relies on: atomic replacement keeping mode and owner, fsynced copies."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes, mode: int | None = None, uid: int | None = None,
                       gid: int | None = None) -> None:
    """Write `data` to `path` through a temp file in the same directory: fsync, then rename.

    Mode and owner are the live file's unless given. On any error (a full disk) the temp file is
    removed and `path` keeps its old bytes.
    """
    try:
        st = path.stat()
        mode = st.st_mode & 0o7777 if mode is None else mode
        uid = st.st_uid if uid is None else uid
        gid = st.st_gid if gid is None else gid
    except FileNotFoundError:
        mode = 0o644 if mode is None else mode
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.regaudit-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
            if uid is not None or gid is not None:
                os.fchown(handle.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_durably(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create/replace a file of our own (journal, backup copy) durably, with `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_atomically(path, data, mode=mode, uid=os.getuid(), gid=os.getgid())
