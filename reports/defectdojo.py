"""DefectDojo "Generic Findings Import" JSON: every fail, error, warn and waived result as a finding.

Import with scan type "Generic Findings Import". Only the fields DefectDojo's generic JSON parser
accepts are written (its allowlist: dojo/tools/generic/json_parser.py). A waived result is imported
`risk_accepted` (inactive) with the waiver's expiry as `planned_remediation_date` and in its tags and
text; `unique_id_from_tool` (check and subject) lets DefectDojo deduplicate across imports.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.model import Result, Severity, Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

from ._common import control_labels, findings, remediation_text

SEVERITY = {Severity.CRITICAL: "Critical", Severity.HIGH: "High", Severity.MEDIUM: "Medium",
            Severity.LOW: "Low", Severity.INFO: "Info"}
NUMERICAL_SEVERITY = {"Critical": "S0", "High": "S1", "Medium": "S2", "Low": "S3", "Info": "S4"}


def _block(label: str, value: Any) -> str:
    return f"**{label}:**\n```json\n{json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)}\n```"


def _finding(report: AuditReport, result: Result) -> dict[str, Any]:
    meta = report.checks[result.check_id]
    severity = SEVERITY[result.severity]
    controls = control_labels(result.check_id)
    where = f"`{result.subject}`: " if result.subject != "-" else ""
    verdict = {Status.FAIL: "fails", Status.ERROR: "could not be decided", Status.WARN: "warns",
               Status.WAIVED: "fails (waived)"}[result.status]
    parts = [f"regaudit check `{result.check_id}` {verdict} on {report.target.get('url') or 'the local host'}.",
             f"{where}{result.message}", _block("Observed", result.observed), _block("Expected", result.expected),
             f"**Passes when:** {meta.passes_when}"]
    tags = ["regaudit", meta.area, meta.vantage.value, result.status.value]
    finding: dict[str, Any] = {
        "title": f"{meta.title}: {result.subject}" if result.subject != "-" else meta.title,
        "severity": severity,
        "numerical_severity": NUMERICAL_SEVERITY[severity],
        "description": "\n\n".join(parts),
        "mitigation": remediation_text(report, result.check_id),
        "impact": meta.rationale,
        "references": "\n".join([*meta.references, *(f"Compliance: {c}" for c in controls),
                                 f"Guide: {meta.guide}"]),
        "severity_justification": f"severity {result.severity.label} under profile {report.profile.get('name')}",
        "date": report.judged_at[:10],
        "active": result.status is not Status.WAIVED,
        "verified": False,
        "risk_accepted": result.status is Status.WAIVED,
        "static_finding": meta.vantage.value == "inside",
        "dynamic_finding": meta.vantage.value != "inside",
        "unique_id_from_tool": f"{result.check_id}|{result.subject}",
        "vuln_id_from_tool": result.check_id,
        "component_name": str(report.target.get("host") or report.target.get("url") or "local host"),
        "tags": tags,
    }
    if result.subject.startswith("/"):
        finding["file_path"] = result.subject
    if report.target.get("url") and meta.vantage.value != "inside":
        finding["endpoints"] = [str(report.target["url"])]
    if result.waiver is not None:
        waiver = result.waiver
        state = "expired" if waiver.expired else "accepted"
        finding["description"] += (f"\n\n**Risk {state}** by {waiver.owner} until {waiver.expires}: {waiver.reason}")
        if result.status is Status.WAIVED:
            finding["planned_remediation_date"] = waiver.expires
            tags += ["risk-accepted", f"waiver-expires-{waiver.expires}"]
    return finding


def document(report: AuditReport) -> dict[str, Any]:
    """The Generic Findings Import document of a report."""
    return {
        "name": "regaudit",
        "type": "regaudit",
        "version": report.tool_version,
        "description": f"regaudit {report.tool_version} audit of {report.target.get('url') or 'the local host'} "
        f"under profile {report.profile.get('name')} (run {report.run_id}, judged {report.judged_at})",
        "findings": [_finding(report, r) for r in findings(report)],
    }


def render_defectdojo(report: AuditReport) -> bytes:
    return (json.dumps(document(report), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


DEFECTDOJO_WRITER = ReportWriter("defectdojo", "defectdojo.json",
                                 "DefectDojo Generic Findings Import JSON (waived findings risk-accepted)",
                                 render_defectdojo)
