"""CSV: one row per result (spreadsheets, trackers), then one row per compliance control (--compliance).

Columns are fixed (CSV_COLUMNS); observed and expected evidence are JSON in their cells. A cell that
a spreadsheet would run as a formula (starting with =, +, @, a tab or CR, or - followed by more text)
is prefixed with a single quote (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from auditor.model import Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

from ._common import FINDING_STATUSES, control_labels, remediation_text

CSV_COLUMNS = (
    "kind", "check", "title", "status", "severity", "area", "vantage", "subject", "message", "observed", "expected",
    "remediation", "guide", "controls", "waiver_reason", "waiver_owner", "waiver_expires", "waiver_expired",
    "target", "profile", "judged_at", "run_id",
)
ORDER = {s: i for i, s in enumerate((*FINDING_STATUSES, Status.PASS, Status.SKIP))}


def safe_cell(value: Any) -> str:
    """The cell text, neutralised when a spreadsheet would evaluate it as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text.startswith("-") and len(text) > 1):
        return "'" + text
    return text


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def render_csv(report: AuditReport) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    common = {"target": report.target.get("url") or "local host", "profile": report.profile.get("name"),
              "judged_at": report.judged_at, "run_id": report.run_id}
    results = sorted(report.results, key=lambda r: (ORDER[r.status], -int(r.severity), r.check_id, r.subject))
    for result in results:
        meta = report.checks[result.check_id]
        waiver = result.waiver
        row = {
            "kind": "result", "check": result.check_id, "title": meta.title, "status": result.status.value,
            "severity": result.severity.label, "area": meta.area, "vantage": meta.vantage.value,
            "subject": result.subject, "message": result.message, "observed": _json(result.observed),
            "expected": _json(result.expected), "remediation": remediation_text(report, result.check_id),
            "guide": meta.guide, "controls": "; ".join(control_labels(result.check_id)),
            "waiver_reason": waiver.reason if waiver else "", "waiver_owner": waiver.owner if waiver else "",
            "waiver_expires": waiver.expires if waiver else "",
            "waiver_expired": ("true" if waiver.expired else "false") if waiver else "",
            **common,
        }
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    for view in report.compliance:
        for control in view["controls"]:
            row = {
                "kind": "control", "check": ", ".join(c["id"] for c in control["checks"]),
                "title": control["title"], "status": control["status"], "subject": f"{view['id']} {control['id']}",
                "message": control.get("manual") or ", ".join(f"{c['id']} {c['status']}" for c in control["checks"]),
                "controls": f"{view['id']} {control['id']}", **common,
            }
            writer.writerow({k: safe_cell(row.get(k, "")) for k in CSV_COLUMNS})
    return out.getvalue().encode("utf-8")


CSV_WRITER = ReportWriter("csv", "csv", "CSV, one row per result (and per control with --compliance)", render_csv)
