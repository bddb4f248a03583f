"""Small helpers shared by report writers."""

from __future__ import annotations

from auditor.model import Result, Severity, Status
from auditor.report import AuditReport

FINDING_STATUSES = (Status.FAIL, Status.ERROR, Status.WARN, Status.WAIVED)
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def findings(report: AuditReport) -> list[Result]:
    """Results a reviewer must look at: fail, error, warn and waived, most severe first."""
    chosen = [r for r in report.results if r.status in FINDING_STATUSES]
    order = {s: i for i, s in enumerate(FINDING_STATUSES)}
    return sorted(chosen, key=lambda r: (order[r.status], -int(r.severity), r.check_id, r.subject))


def target_label(report: AuditReport) -> str:
    url = report.target.get("url")
    inside = " (inside)" if report.target.get("inside") else ""
    return f"{url or 'local host'}{inside}"


def remediation_text(report: AuditReport, check_id: str) -> str:
    """The check's remediation, with its generator when it has one."""
    meta = report.checks[check_id]
    if not meta.generator:
        return meta.remediation
    return f"{meta.remediation} (generate the config with `regaudit remediate`, generator {meta.generator})"


def control_labels(check_id: str) -> list[str]:
    """`framework control` labels of the controls a check covers (from auditor/compliance/*.yaml)."""
    from auditor.compliance import controls_for

    return [f"{c['framework']} {c['control']}" for c in controls_for(check_id)]
