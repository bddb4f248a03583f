"""File operations apply relies on: replacing a live file keeping its mode and owner, fsynced copies
(both through the one atomic writer, auditor/atomicfile.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from auditor.atomicfile import write_atomically


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    write_atomically(path, data, mode, uid, gid, parents=False)


def write_durably(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create/replace a file of our own (journal, backup copy) durably, with `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_atomically(path, data, mode=mode, uid=os.getuid(), gid=os.getgid())
