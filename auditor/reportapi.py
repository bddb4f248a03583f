"""The report-writer API: a named writer turns an AuditReport into one file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor.atomicfile import write_atomically
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


def write_report(writer: ReportWriter, report: AuditReport, out_dir: Path, basename: str = "regaudit") -> Path:
    path = out_dir / f"{basename}.{writer.extension}"
    stream = writer.stream
    if stream is not None:
        write_atomically(path, lambda handle: stream(report, handle))
    else:
        write_atomically(path, writer.render(report))
    return path
