"""JUnit XML: a test suite per area, a test case per check and subject (GitLab, Jenkins)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from auditor.model import Result, Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter
from auditor.safetext import visible


def _detail(result: Result, report: AuditReport) -> str:
    meta = report.checks[result.check_id]
    lines = [result.message, f"severity: {result.severity.label}", f"guide: {meta.guide}"]
    if result.observed is not None:
        lines.append("observed: " + json.dumps(result.observed, sort_keys=True, default=str)[:4000])
    if result.expected is not None:
        lines.append("expected: " + json.dumps(result.expected, sort_keys=True, default=str)[:4000])
    lines.append(f"remediation: {meta.remediation}")
    return "\n".join(lines)


def _compliance_suite(root: ET.Element, view: Mapping[str, Any], timestamp: str) -> dict[str, int]:
    """A test suite per --compliance framework, a test case per control (manual ones skipped)."""
    controls = list(view["controls"])
    counts = {
        "tests": len(controls),
        "failures": sum(c["status"] in ("fail", "warn") for c in controls),
        "errors": sum(c["status"] == "error" for c in controls),
        "skipped": sum(c["status"] in ("manual", "not-applicable", "incomplete") for c in controls),
    }
    attributes = {"name": f"regaudit.compliance.{view['id']}", "timestamp": timestamp}
    attributes.update({k: str(v) for k, v in counts.items()})
    suite = ET.SubElement(root, "testsuite", attributes)
    for control in controls:
        case = ET.SubElement(suite, "testcase", classname=f"regaudit.compliance.{view['id']}",
                             name=f"{control['id']} {control['title']}")
        checks = ", ".join(f"{c['id']}: {c['status']}" for c in control["checks"]) or "no automated check"
        status = control["status"]
        if status in ("fail", "warn"):
            ET.SubElement(case, "failure", type=status, message=f"control {status}: {checks}").text = checks
        elif status == "error":
            ET.SubElement(case, "error", type="could-not-decide", message=f"control undecided: {checks}").text = checks
        elif status in ("manual", "not-applicable", "incomplete"):
            ET.SubElement(case, "skipped", message=f"{status}: {control.get('manual') or checks}")
        else:
            ET.SubElement(case, "system-out").text = f"{status.upper()}: {checks}"
    return counts


def render_junit(report: AuditReport) -> bytes:
    by_area: dict[str, list[Result]] = defaultdict(list)
    for result in report.results:
        by_area[report.checks[result.check_id].area].append(result)
    root = ET.Element("testsuites", name=f"regaudit {report.profile.get('name')}")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for area in sorted(by_area):
        results = by_area[area]
        counts = {
            "tests": len(results),
            "failures": sum(r.status is Status.FAIL for r in results),
            "errors": sum(r.status is Status.ERROR for r in results),
            "skipped": sum(r.status is Status.SKIP for r in results),
        }
        attributes = {"name": f"regaudit.{area}", "timestamp": report.started_at}
        attributes.update({k: str(v) for k, v in counts.items()})
        suite = ET.SubElement(root, "testsuite", attributes)
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=f"regaudit.{area}.{result.check_id}",
                                 name=f"{result.check_id} [{result.subject}]")
            if result.status is Status.FAIL:
                ET.SubElement(case, "failure", type=result.severity.label, message=result.message).text = \
                    _detail(result, report)
            elif result.status is Status.ERROR:
                ET.SubElement(case, "error", type="could-not-decide", message=result.message).text = \
                    _detail(result, report)
            elif result.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=result.message)
            elif result.status in (Status.WARN, Status.WAIVED):
                note = result.message
                if result.waiver is not None:
                    waiver = result.waiver
                    note += f" (waived: {waiver.reason}, owner {waiver.owner}, until {waiver.expires})"
                ET.SubElement(case, "system-out").text = f"{result.status.value.upper()}: {note}"
        for key in totals:
            totals[key] += counts[key]
    for view in report.compliance:
        counts = _compliance_suite(root, view, report.started_at)
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    _xml_safe(root)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _xml_safe(root: ET.Element) -> None:
    """Escape what XML 1.0 cannot carry (controls from the audited system) in every text and attribute."""
    for element in root.iter():
        if element.text:
            element.text = visible(element.text, keep_newlines=True)
        for key, value in element.attrib.items():
            element.set(key, visible(value))


JUNIT_WRITER = ReportWriter("junit", "junit.xml", "JUnit XML for GitLab and Jenkins", render_junit)
