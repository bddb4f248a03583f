"""OCSF 1.5.0 JSON: a Detection Finding (class 2004) per finding, a Compliance Finding (class 2003) per control.

The file is a JSON array of events, as security data lakes (Amazon Security Lake, Splunk, ...) and
Prowler's `json-ocsf` output carry them. Every fail, error, warn and waived result becomes a
Detection Finding carrying its evidence (`evidences[].data`: observed and expected) and remediation;
with `--compliance`, every control of each framework becomes a Compliance Finding with its status
and checks. `finding_info.uid` is stable across runs (target, check, subject), so a lake can follow
one finding over time. Validated in tests with the `py-ocsf-models` package (tests/unit/test_trackers.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from auditor.model import Result, Severity, Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

from ._common import control_labels, findings, remediation_text

OCSF_VERSION = "1.5.0"
DETECTION_FINDING = 2004
COMPLIANCE_FINDING = 2003
FINDINGS_CATEGORY = 2
ACTIVITY_CREATE = 1
SEVERITY_ID = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
# Finding status_id: 1 New, 3 Suppressed (a waived finding: accepted risk).
FINDING_STATUS = {Status.FAIL: (1, "New"), Status.ERROR: (1, "New"), Status.WARN: (1, "New"),
                  Status.WAIVED: (3, "Suppressed")}
# Compliance status_id: 0 Unknown, 1 Pass, 2 Warning, 3 Fail, 99 Other.
COMPLIANCE_STATUS = {"pass": (1, "Pass"), "warn": (2, "Warning"), "waived": (2, "Warning"), "fail": (3, "Fail"),
                     "error": (0, "Unknown"), "incomplete": (0, "Unknown"), "manual": (99, "Other"),
                     "not-applicable": (99, "Other")}
CHECK_STATUS = {"pass": (1, "Pass"), "warn": (2, "Warning"), "waived": (2, "Warning"), "fail": (3, "Fail")}


def _time_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def _uid(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _metadata(report: AuditReport, event_code: str, uid: str) -> dict[str, Any]:
    metadata = {
        "product": {"name": "regaudit", "vendor_name": "regaudit", "version": report.tool_version,
                    "uid": "regaudit"},
        "version": OCSF_VERSION,
        "event_code": event_code,
        "uid": uid,
        "log_name": f"regaudit/{report.profile.get('name')}",
    }
    if report.run_id:
        metadata["correlation_uid"] = report.run_id
    return metadata


def _resource(report: AuditReport, result: Result) -> dict[str, Any]:
    kind = "file" if result.subject.startswith("/") else "registry-resource"
    return {"name": result.subject, "uid": result.subject, "type": kind,
            "data": {"target": report.target.get("url") or "local host", "inside": bool(report.target.get("inside"))}}


def _detection(report: AuditReport, result: Result, time: int) -> dict[str, Any]:
    meta = report.checks[result.check_id]
    target = str(report.target.get("url") or "local host")
    status_id, status = FINDING_STATUS[result.status]
    severity_id = SEVERITY_ID[result.severity]
    unmapped: dict[str, Any] = {"regaudit": {"check": result.check_id, "status": result.status.value,
                                             "guide": meta.guide, "controls": control_labels(result.check_id),
                                             "profile": report.profile.get("name")}}
    if result.waiver is not None:
        unmapped["regaudit"]["waiver"] = {"reason": result.waiver.reason, "owner": result.waiver.owner,
                                          "expires": result.waiver.expires, "expired": result.waiver.expired}
    event: dict[str, Any] = {
        "metadata": _metadata(report, result.check_id, _uid(report.run_id, target, result.check_id, result.subject)),
        "category_uid": FINDINGS_CATEGORY,
        "category_name": "Findings",
        "class_uid": DETECTION_FINDING,
        "class_name": "Detection Finding",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": DETECTION_FINDING * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "time": time,
        "severity_id": severity_id,
        "severity": SEVERITY_NAME[severity_id],
        "status_id": status_id,
        "status": status,
        "status_code": result.status.value.upper(),
        "status_detail": result.message,
        "message": f"{result.subject}: {result.message}" if result.subject != "-" else result.message,
        "finding_info": {"uid": _uid(target, result.check_id, result.subject), "title": meta.title,
                         "desc": meta.rationale, "types": [meta.area, meta.vantage.value], "created_time": time},
        "resources": [_resource(report, result)],
        "evidences": [{"name": "regaudit evidence", "data": {"observed": result.observed,
                                                             "expected": result.expected},
                       "verdict_id": 0}],
        "remediation": {"desc": remediation_text(report, result.check_id), "references": list(meta.references)},
        "unmapped": unmapped,
    }
    return event


def _compliance(report: AuditReport, view: Mapping[str, Any], control: Mapping[str, Any],
                time: int) -> dict[str, Any]:
    status_id, status = COMPLIANCE_STATUS[control["status"]]
    severities = [report.severities[c["id"]] for c in control["checks"] if c["id"] in report.severities]
    severity_id = SEVERITY_ID[max(severities)] if severities else 1
    target = str(report.target.get("url") or "local host")
    checks = []
    for item in control["checks"]:
        check: dict[str, Any] = {"uid": item["id"], "status": item["status"], "standards": [view["id"]]}
        if item["id"] in report.checks:
            check["name"] = report.checks[item["id"]].title
            check["severity_id"] = SEVERITY_ID[report.severities[item["id"]]]
            check["severity"] = SEVERITY_NAME[check["severity_id"]]
        if item["status"] in CHECK_STATUS:
            check["status_id"] = CHECK_STATUS[item["status"]][0]
        checks.append(check)
    standard = f"{view['title']} ({view['version']})"
    return {
        "metadata": _metadata(report, f"{view['id']}:{control['id']}",
                              _uid(report.run_id, target, view["id"], control["id"])),
        "category_uid": FINDINGS_CATEGORY,
        "category_name": "Findings",
        "class_uid": COMPLIANCE_FINDING,
        "class_name": "Compliance Finding",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": COMPLIANCE_FINDING * 100 + ACTIVITY_CREATE,
        "type_name": "Compliance Finding: Create",
        "time": time,
        "severity_id": severity_id,
        "severity": SEVERITY_NAME[severity_id],
        "status_code": control["status"].upper(),
        "message": f"{view['id']} {control['id']} {control['title']}: {control['status']}",
        "finding_info": {"uid": _uid(target, view["id"], control["id"]), "title": f"{view['id']} {control['id']}",
                         "desc": control["title"], "types": ["compliance", view["id"]], "created_time": time},
        "compliance": {"standards": [standard], "requirements": [control["id"]], "control": control["id"],
                       "desc": control.get("manual") or control["title"], "status_id": status_id,
                       "checks": checks},
        "resources": [{"name": target, "uid": target, "type": "registry"}],
        "unmapped": {"regaudit": {"framework": view["id"], "framework_source": view["source"],
                                  "control_status": control["status"], "compliance_status": status}},
    }


def events(report: AuditReport) -> list[dict[str, Any]]:
    """The OCSF events of a report (JSON-ready; optional attributes without a value are left out)."""
    time = _time_ms(report.judged_at)
    out = [_detection(report, result, time) for result in findings(report)]
    for view in report.compliance:
        out += [_compliance(report, view, control, time) for control in view["controls"]]
    return out


def render_ocsf(report: AuditReport) -> bytes:
    return (json.dumps(events(report), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


OCSF_WRITER = ReportWriter("ocsf", "ocsf.json",
                           "OCSF 1.5.0 Detection Findings (and Compliance Findings with --compliance)", render_ocsf)
