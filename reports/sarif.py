"""SARIF 2.1.0: one rule per check, one result per failing (or waived) subject."""

from __future__ import annotations

import json
from typing import Any

from auditor.compliance import controls_for, load_frameworks
from auditor.model import Result, Severity, Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

from ._common import SECURITY_SEVERITY, findings

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/regaudit/regaudit"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
         Severity.LOW: "note", Severity.INFO: "note"}


def _taxonomies(report: AuditReport) -> list[dict[str, Any]]:
    """One SARIF taxonomy per compliance framework; a taxon per control, with its status under --compliance."""
    statuses = {(v["id"], c["id"]): c["status"] for v in report.compliance for c in v["controls"]}
    out = []
    for framework in load_frameworks().values():
        taxa = []
        for control in framework.controls:
            taxon: dict[str, Any] = {"id": control.id, "name": control.title,
                                     "shortDescription": {"text": control.title}}
            status = statuses.get((framework.id, control.id))
            if status is not None:
                taxon["properties"] = {"status": status, "checks": list(control.checks)}
            taxa.append(taxon)
        out.append({"name": framework.id, "fullName": framework.title, "version": framework.version,
                    "organization": framework.publisher, "informationUri": framework.source,
                    "shortDescription": {"text": framework.title}, "taxa": taxa})
    return out


def _relationships(check_id: str, taxonomy_index: dict[str, int]) -> list[dict[str, Any]]:
    return [{"target": {"id": c["control"], "toolComponent": {"name": c["framework"],
                                                               "index": taxonomy_index[c["framework"]]}},
             "kinds": ["relevant"]}
            for c in controls_for(check_id) if c["framework"] in taxonomy_index]


def _rule(report: AuditReport, check_id: str) -> dict[str, Any]:
    meta = report.checks[check_id]
    severity = report.severities[check_id]
    help_text = (f"{meta.rationale}\n\nPasses when: {meta.passes_when}\n\nRemediation: {meta.remediation}\n\n"
                 f"Guide: {meta.guide}")
    generator = f"\n\n**Generator:** `{meta.generator}`" if meta.generator else ""
    help_md = (f"{meta.rationale}\n\n**Passes when:** {meta.passes_when}\n\n**Remediation:** {meta.remediation}\n\n"
               f"**Guide section:** {meta.guide}{generator}")
    return {
        "id": meta.id,
        "name": meta.id.replace(".", "_").replace("-", "_"),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.passes_when},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "tags": ["security", meta.area, meta.vantage.value],
            "security-severity": SECURITY_SEVERITY[severity],
            "severity": severity.label,
            "guide": meta.guide,
            "references": list(meta.references),
        },
    }


def _location(result: Result) -> dict[str, Any]:
    if result.subject.startswith("/"):
        return {"physicalLocation": {"artifactLocation": {"uri": "file://" + result.subject}}}
    return {"logicalLocations": [{"name": result.subject, "kind": "resource"}]}


def _result(result: Result, rule_index: int) -> dict[str, Any]:
    text = result.message if result.status is not Status.ERROR else f"could not decide: {result.message}"
    out: dict[str, Any] = {
        "ruleId": result.check_id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVEL[result.severity] if result.status is not Status.WARN else "warning",
        "message": {"text": f"{result.subject}: {text}" if result.subject != "-" else text},
        "locations": [_location(result)],
        "properties": {"status": result.status.value, "severity": result.severity.label,
                       "observed": result.observed, "expected": result.expected},
    }
    if result.waiver is not None and result.status is Status.WAIVED:
        out["suppressions"] = [{
            "kind": "external", "status": "accepted",
            "justification": f"{result.waiver.reason} (owner {result.waiver.owner}, expires {result.waiver.expires})",
        }]
    return out


def render_sarif(report: AuditReport) -> bytes:
    rule_ids = sorted(report.checks)
    index = {rule: i for i, rule in enumerate(rule_ids)}
    taxonomies = _taxonomies(report)
    taxonomy_index = {t["name"]: i for i, t in enumerate(taxonomies)}
    rules = []
    for rule in rule_ids:
        entry = _rule(report, rule)
        relationships = _relationships(rule, taxonomy_index)
        if relationships:
            entry["relationships"] = relationships
        rules.append(entry)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "regaudit",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFO_URI,
                "rules": rules,
                "supportedTaxonomies": [{"name": t["name"], "index": i} for i, t in enumerate(taxonomies)],
            }},
            "taxonomies": taxonomies,
            "automationDetails": {"id": f"regaudit/{report.profile.get('name')}/{report.run_id}"},
            "invocations": [{
                "executionSuccessful": report.exit_code != 3,
                "startTimeUtc": report.started_at,
                "endTimeUtc": report.ended_at,
                "exitCode": report.exit_code,
            }],
            "results": [_result(r, index[r.check_id]) for r in findings(report)],
            "properties": {
                "target": dict(report.target),
                "profile": report.profile.get("name"),
                "profileSha256": report.profile.get("sha256"),
                "score": report.scores.overall,
                "grade": report.scores.grade,
                "compliance": [dict(view) for view in report.compliance],
            },
        }],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


SARIF_WRITER = ReportWriter("sarif", "sarif", "SARIF 2.1.0 for code-scanning dashboards", render_sarif)
