"""The tracker formats on the weak lab's recorded evidence, each parsed back or validated.

CSV with Python's csv reader, OCSF with the `py-ocsf-models` package (OCSF 1.5.0 Detection Finding
and Compliance Finding models: an event must survive validation and dump unchanged, so an unknown or
mistyped attribute fails), DefectDojo's Generic Findings Import with the parser's own rules
(required and allowed fields copied from dojo/tools/generic/json_parser.py, dates parsed by
dateutil as DefectDojo does). Every failing result must arrive with its evidence and remediation.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from .helpers import FIXTURES

EVIDENCE = FIXTURES / "lab-weak"
REPO = Path(__file__).resolve().parents[2]
FRAMEWORKS = "nist-800-190,nist-800-52r2,cis-docker"
# DefectDojo's generic JSON parser (dojo/tools/generic/json_parser.py): these keys, besides
# endpoints/files/tags/vulnerability_ids/cwes which it pops first; anything else is refused.
DOJO_REQUIRED = {"title", "severity", "description"}
DOJO_ALLOWED = DOJO_REQUIRED | {
    "date", "cwe", "cve", "epss_score", "epss_percentile", "cvssv3", "cvssv3_score", "cvssv4", "cvssv4_score",
    "mitigation", "impact", "steps_to_reproduce", "severity_justification", "references", "active", "verified",
    "false_p", "out_of_scope", "risk_accepted", "under_review", "is_mitigated", "thread_id", "mitigated",
    "numerical_severity", "param", "payload", "line", "file_path", "component_name", "component_version",
    "static_finding", "dynamic_finding", "scanner_confidence", "unique_id_from_tool", "vuln_id_from_tool",
    "sast_source_object", "sast_sink_object", "sast_source_line", "sast_source_file_path", "nb_occurences",
    "publish_date", "service", "planned_remediation_date", "planned_remediation_version", "effort_for_fixing",
    "tags", "kev_date", "known_exploited", "ransomware_used", "fix_available", "fix_version"}
DOJO_POPPED = {"endpoints", "files", "tags", "vulnerability_ids", "cwes"}
WAIVED_CHECK = "registry.log-json"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The weak lab's evidence judged under the lab profile plus one waiver, in the tracker formats."""
    tmp = tmp_path_factory.mktemp("trackers")
    profile = tmp / "waived.yaml"
    profile.write_text(f"name: lab-waived\nextends: {REPO / 'tests' / 'lab-profile.yaml'}\nwaivers:\n"
                       f"  - {{check: {WAIVED_CHECK}, reason: 'reboot planned', owner: ops, expires: '2099-12-31'}}\n")
    proc = subprocess.run(
        ["regaudit", "evaluate", str(EVIDENCE / "outside.json"), str(EVIDENCE / "inside.json"), "--profile",
         str(profile), "--format", "json,csv,ocsf,defectdojo", "--compliance", FRAMEWORKS, "--output", str(tmp)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return tmp


def _report(out: Path) -> dict:
    return json.loads((out / "regaudit.json").read_text())


def _findings(out: Path) -> list[dict]:
    return [r for r in _report(out)["results"] if r["status"] in ("fail", "error", "warn", "waived")]


def _remediation(report: dict, check_id: str) -> str:
    return next(c["remediation"] for c in report["checks"] if c["id"] == check_id)


def test_the_weak_lab_has_failures_and_one_waiver(out: Path) -> None:
    statuses = [r["status"] for r in _report(out)["results"]]
    assert statuses.count("fail") >= 20
    assert [r["check"] for r in _report(out)["results"] if r["status"] == "waived"] == [WAIVED_CHECK]


def test_csv_parses_back_with_every_finding_its_evidence_and_remediation(out: Path) -> None:
    report = _report(out)
    rows = list(csv.DictReader(io.StringIO((out / "regaudit.csv").read_text(), newline="")))
    results = [r for r in rows if r["kind"] == "result"]
    assert len(results) == len(report["results"])
    by_key = {(r["check"], r["subject"].removeprefix("'")): r for r in results}
    for finding in _findings(out):
        row = by_key[(finding["check"], finding["subject"])]
        assert row["status"] == finding["status"] and row["severity"] == finding["severity"]
        assert json.loads(row["observed"] or "null") == finding["observed"]
        assert json.loads(row["expected"] or "null") == finding["expected"]
        assert row["remediation"].startswith(_remediation(report, finding["check"]).lstrip("=+@-"))
    waived = by_key[next((r["check"], r["subject"]) for r in _findings(out) if r["status"] == "waived")]
    assert (waived["waiver_owner"], waived["waiver_expires"], waived["waiver_expired"]) == ("ops", "2099-12-31",
                                                                                             "false")
    controls = [r for r in rows if r["kind"] == "control"]
    assert len(controls) == sum(len(v["controls"]) for v in report["compliance"])
    assert {r["status"] for r in controls} <= {"fail", "manual", "pass", "incomplete", "not-applicable", "waived"}


def test_csv_neutralises_formula_cells() -> None:
    from auditor.reports.csv_report import safe_cell

    assert safe_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert safe_cell("+1") == "'+1" and safe_cell("@SUM(A1)") == "'@SUM(A1)" and safe_cell("-2+3") == "'-2+3"
    assert safe_cell("-") == "-" and safe_cell("tls.ciphers") == "tls.ciphers" and safe_cell(None) == ""


def test_ocsf_events_validate_against_the_ocsf_models(out: Path) -> None:
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    events = json.loads((out / "regaudit.ocsf.json").read_text())
    models = {2004: DetectionFinding, 2003: ComplianceFinding}
    for event in events:
        model = models[event["class_uid"]].model_validate(event)
        assert model.model_dump(mode="json", exclude_none=True) == event, event["metadata"]["event_code"]
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    report = _report(out)
    detections = [e for e in events if e["class_uid"] == 2004]
    assert len(detections) == len(_findings(out))
    by_key = {(e["unmapped"]["regaudit"]["check"], e["resources"][0]["uid"]): e for e in detections}
    for finding in _findings(out):
        event = by_key[(finding["check"], finding["subject"])]
        assert event["evidences"][0]["data"] == {"observed": finding["observed"], "expected": finding["expected"]}
        assert event["remediation"]["desc"].startswith(_remediation(report, finding["check"]))
        assert event["status_code"] == finding["status"].upper()
        assert event["status"] == ("Suppressed" if finding["status"] == "waived" else "New")
    compliance = [e for e in events if e["class_uid"] == 2003]
    assert len(compliance) == sum(len(v["controls"]) for v in report["compliance"])
    one = next(e for e in compliance if e["metadata"]["event_code"] == "nist-800-190:4.2.1")
    assert one["compliance"]["status_id"] == 3 and one["compliance"]["requirements"] == ["4.2.1"]
    assert {c["uid"] for c in one["compliance"]["checks"]} >= {"tls.protocols", "tls.certificate"}


def test_defectdojo_generic_import_parses_back(out: Path) -> None:
    from dateutil import parser as dateparser

    document = json.loads((out / "regaudit.defectdojo.json").read_text())
    assert set(document) <= {"name", "type", "version", "description", "dynamic_tool", "static_tool", "soc",
                             "findings"}
    report = _report(out)
    findings = document["findings"]
    assert len(findings) == len(_findings(out))
    for item in findings:
        fields = set(item) - DOJO_POPPED
        assert fields >= DOJO_REQUIRED, item
        assert fields <= DOJO_ALLOWED, sorted(fields - DOJO_ALLOWED)
        assert item["severity"] in ("Critical", "High", "Medium", "Low", "Info")
        dateparser.parse(item["date"])
        assert all(isinstance(t, str) for t in item["tags"])
    by_uid = {f["unique_id_from_tool"]: f for f in findings}
    assert len(by_uid) == len(findings)
    for finding in _findings(out):
        item = by_uid[f"{finding['check']}|{finding['subject']}"]
        assert json.dumps(finding["observed"], indent=2, sort_keys=True, ensure_ascii=False) in item["description"]
        assert item["mitigation"].startswith(_remediation(report, finding["check"]))
        assert item["active"] is (finding["status"] != "waived")
    waived = [f for f in findings if f["risk_accepted"]]
    assert [f["vuln_id_from_tool"] for f in waived] == [WAIVED_CHECK]
    assert waived[0]["planned_remediation_date"] == "2099-12-31" and not waived[0]["active"]
    assert "waiver-expires-2099-12-31" in waived[0]["tags"]
    dateparser.parse(waived[0]["planned_remediation_date"])
