"""The report-writer API: a named writer turns an AuditReport into one file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor.report import AuditReport

WriteFn = Callable[[AuditReport], bytes]
StreamFn = Callable[[AuditReport, BinaryIO], None]


@dataclass(frozen=True)
class ReportWriter:
    """`render(report) -> bytes`; the engine writes the bytes to `<output>/<basename>.<extension>`.

    A writer of large reports may also give `stream(report, binary file)`, used instead of
    `render` when writing to disk so the whole document never sits in memory as one string.
    """

    name: str
    extension: str
    description: str
    render: WriteFn
    stream: StreamFn | None = None


def write_atomically(path: Path, data: bytes | Callable[[BinaryIO], None], mode: int = 0o644) -> None:
    """Write `data` (bytes, or a function writing to a binary file) to `path` through a temp file,
    fsync and rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(writer: ReportWriter, report: AuditReport, out_dir: Path, basename: str = "regaudit") -> Path:
    path = out_dir / f"{basename}.{writer.extension}"
    stream = writer.stream
    if stream is not None:
        write_atomically(path, lambda handle: stream(report, handle))
    else:
        write_atomically(path, writer.render(report))
    return path
