"""The report-writer API: a named writer turns an AuditReport into one file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from auditor.report import AuditReport

WriteFn = Callable[[AuditReport], bytes]


@dataclass(frozen=True)
class ReportWriter:
    """`render(report) -> bytes`; the engine writes the bytes to `<output>/<basename>.<extension>`."""

    name: str
    extension: str
    description: str
    render: WriteFn


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through a temp file, fsync and rename (never a half-written report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
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
    write_atomically(path, writer.render(report))
    return path
