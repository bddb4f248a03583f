"""The one atomic writer: a file is replaced whole or not at all.

Contract: `write_atomically(path, data)` writes `data` (bytes, or a function writing to a binary
file) to a temp file in the same directory, sets its mode (and owner when given), fsyncs it,
renames it over `path` and fsyncs the directory. On any error (a full disk, an exception in the
writing function) the temp file is removed and `path` keeps its old bytes. Reports, evidence,
schedules, plans and remediation's installs all write through it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes | Callable[[BinaryIO], None], mode: int = 0o644,
                     uid: int | None = None, gid: int | None = None, *, parents: bool = True) -> None:
    """Replace `path` with `data` (see the module's contract); `parents` creates missing directories."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.regaudit-")
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
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
