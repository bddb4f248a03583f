"""The JSON report (schema: report.schema.json beside this module)."""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any, BinaryIO

from auditor.report import AuditReport
from auditor.reportapi import ReportWriter


def render_json(report: AuditReport) -> bytes:
    return (json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def stream_json(report: AuditReport, handle: BinaryIO) -> None:
    """The same bytes as render_json, written in chunks (large registries: tens of MB)."""
    text = io.TextIOWrapper(handle, encoding="utf-8", write_through=True)
    json.dump(report.to_json(), text, indent=2, ensure_ascii=False)
    text.write("\n")
    text.flush()
    text.detach()


@cache
def report_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of the JSON report."""
    text = resources.files("auditor.reports").joinpath("report.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


JSON_WRITER = ReportWriter("json", "json", "machine-readable report (reports/report.schema.json)", render_json,
                           stream_json)
