"""The JSON report (schema: report.schema.json beside this module)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, BinaryIO

from auditor.jsonstream import dumps_bytes, write_json
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

EXPAND = 2  # the report's members, then one line per result, check, waiver...


def render_json(report: AuditReport) -> bytes:
    return dumps_bytes(report.to_json(), expand=EXPAND)


def stream_json(report: AuditReport, handle: BinaryIO) -> None:
    """The same bytes as render_json, written in chunks (large registries: tens of MB)."""
    write_json(report.to_json(), handle, expand=EXPAND)


@cache
def report_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of the JSON report."""
    text = resources.files("auditor.reports").joinpath("report.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


JSON_WRITER = ReportWriter("json", "json", "machine-readable report (reports/report.schema.json)", render_json,
                           stream_json)
