"""`--compliance` and the tracker formats against the live weak lab.

`regaudit audit URL --compliance nist-800-190` from the outsider's namespace lists every control
with its status in console, JSON, HTML, SARIF and Markdown; the outside and inside evidence judged
together write CSV, OCSF and DefectDojo files that parse back with every failing result, its
evidence and its remediation (the checks of tests/unit/test_trackers.py, on live evidence).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
from unit.test_trackers import DOJO_ALLOWED, DOJO_POPPED, DOJO_REQUIRED

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "lab-profile.yaml"
SCHEMAS = REPO / "tests" / "fixtures" / "schemas"


def _env(out: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")},
            "REGAUDIT_STATE_DIR": str(out / "state"), "COLUMNS": "200"}


def _common(raw: dict) -> list[str]:
    return ["--ca-bundle", raw["tls"]["ca"], "--cosign-key", raw["cosign"]["public_key"], "--scan-dir",
            raw["scan_dir"], "--username", raw["auth"]["username"], "--password-file", raw["auth"]["password_file"],
            "--profile", str(PROFILE), "--no-progress", "--no-history"]


@pytest.fixture(scope="module")
def weak_outside(lab_weak, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("weak-compliance")
    raw = lab_weak.raw
    proc = subprocess.run(["ip", "netns", "exec", raw["namespaces"]["outsider"], "regaudit", "audit", raw["url"],
                           *_common(raw), "--compliance", "nist-800-190", "--format",
                           "console,json,html,sarif,markdown", "--output", str(out)],
                          capture_output=True, text=True, env=_env(out), timeout=600)
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    return out, proc


def test_audit_lists_every_control_in_every_writer(weak_outside: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = weak_outside
    view = json.loads((out / "regaudit.json").read_text())["compliance"][0]
    assert view["id"] == "nist-800-190" and len(view["controls"]) == 8
    statuses = {c["id"]: c["status"] for c in view["controls"]}
    # Outside only: the TLS and auth failures decide 4.2.1 and 4.2.3; the manual ones stay manual.
    assert statuses["4.2.1"] == "fail" and statuses["4.2.3"] == "fail" and statuses["4.1.3"] == "manual"
    markdown = (out / "regaudit.md").read_text()
    html = (out / "regaudit.html").read_text()
    sarif = json.loads((out / "regaudit.sarif").read_text())
    jsonschema.validate(sarif, json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))
    taxa = {t["id"]: t["properties"]["status"] for t in sarif["runs"][0]["taxonomies"]
            if t["name"] == "nist-800-190" for t in t["taxa"]}
    assert taxa == statuses
    for control in view["controls"]:
        assert f"{control['status'].upper():<14} {control['id']:<8} {control['title']}" in proc.stdout
        assert f"| {control['id']} | **{control['status']}** |" in markdown
        assert f'data-control="{control["id"]}" data-status="{control["status"]}"' in html


@pytest.fixture(scope="module")
def weak_trackers(lab_weak, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("weak-trackers")
    raw = lab_weak.raw
    env = _env(out)
    for ns, extra, name in ((raw["namespaces"]["outsider"], [raw["url"]], "outside"),
                            (raw["namespaces"]["registry"], ["--inside", "--fstab", raw["fstab"]], "inside")):
        proc = subprocess.run(["ip", "netns", "exec", ns, "regaudit", "audit", *extra, *_common(raw), "--format",
                               "json", "--evidence-out", str(out / f"{name}.json"), "--output", str(out / name)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert "Traceback" not in proc.stderr, proc.stderr
    proc = subprocess.run(["regaudit", "evaluate", str(out / "outside.json"), str(out / "inside.json"), "--profile",
                           str(PROFILE), "--format", "json,csv,ocsf,defectdojo", "--compliance",
                           "nist-800-190,nist-800-52r2,cis-docker", "--output", str(out / "merged")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    return out / "merged"


def test_live_weak_lab_tracker_files_carry_every_failure(weak_trackers: Path) -> None:
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    report = json.loads((weak_trackers / "regaudit.json").read_text())
    failing = [r for r in report["results"] if r["status"] in ("fail", "error", "warn", "waived")]
    assert len({r["check"] for r in failing}) >= 20
    keys = {(r["check"], r["subject"]) for r in failing}
    rows = [r for r in csv.DictReader(io.StringIO((weak_trackers / "regaudit.csv").read_text(), newline=""))
            if r["kind"] == "result" and r["status"] in ("fail", "error", "warn", "waived")]
    assert {(r["check"], r["subject"].removeprefix("'")) for r in rows} == keys
    assert all(r["remediation"] and (r["observed"] or r["expected"]) for r in rows)
    events = json.loads((weak_trackers / "regaudit.ocsf.json").read_text())
    for event in events:
        model = {2004: DetectionFinding, 2003: ComplianceFinding}[event["class_uid"]].model_validate(event)
        assert model.model_dump(mode="json", exclude_none=True) == event
    detections = [e for e in events if e["class_uid"] == 2004]
    assert {(e["unmapped"]["regaudit"]["check"], e["resources"][0]["uid"]) for e in detections} == keys
    assert all(e["remediation"]["desc"] and "observed" in e["evidences"][0]["data"] for e in detections)
    dojo = json.loads((weak_trackers / "regaudit.defectdojo.json").read_text())["findings"]
    assert {f["unique_id_from_tool"] for f in dojo} == {f"{c}|{s}" for c, s in keys}
    for item in dojo:
        fields = set(item) - DOJO_POPPED
        assert fields >= DOJO_REQUIRED and fields <= DOJO_ALLOWED
        assert item["mitigation"] and "**Observed:**" in item["description"]
