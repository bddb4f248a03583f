"""Compliance as data: the framework files, per-control status, and every writer's compliance view.

Judged on the weak lab's recorded evidence (tests/fixtures/lab-weak) under `--compliance`: console,
JSON (schema), HTML (headless Chromium, one framework at a time), SARIF (OASIS schema, taxonomies),
Markdown, JUnit (XSD) and Prometheus each show every control with its status.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from headless import CHROMIUM, chromium_page
from prometheus_client.parser import text_string_to_metric_families

from auditor.compliance import _control_status, load_frameworks, unknown_check_ids
from auditor.errors import UsageError
from auditor.plugins import load_checks

from .helpers import FIXTURES

REPO = Path(__file__).resolve().parents[2]
WEAK = FIXTURES / "lab-weak"
HARDENED = FIXTURES / "lab-hardened"
PROFILE = REPO / "tests" / "lab-profile.yaml"
FORMATS = "console,json,html,sarif,markdown,junit,prometheus"


def _evaluate(out: Path, *evidence: Path, frameworks: str = "nist-800-190,nist-800-52r2,cis-docker",
              formats: str = FORMATS) -> subprocess.CompletedProcess:
    proc = subprocess.run(["regaudit", "evaluate", *map(str, evidence), "--profile", str(PROFILE), "--format",
                           formats, "--compliance", frameworks, "--output", str(out)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("weak")
    proc = _evaluate(out, WEAK / "outside.json", WEAK / "inside.json")
    assert proc.returncode == 1
    return out, proc


def test_every_check_a_framework_names_exists() -> None:
    assert unknown_check_ids(load_checks()) == {}


def test_each_framework_names_its_source_and_version_and_has_unique_controls() -> None:
    frameworks = load_frameworks()
    assert {"nist-800-190", "nist-800-52r2", "cis-docker"} <= set(frameworks)
    for framework in frameworks.values():
        assert framework.source.startswith("https://") and framework.version and framework.publisher
        ids = [c.id for c in framework.controls]
        assert len(ids) == len(set(ids))
        assert any(c.checks for c in framework.controls)
    assert [c.id for c in frameworks["nist-800-190"].controls if c.id.startswith("4.2")] == ["4.2.1", "4.2.2",
                                                                                            "4.2.3"]


@pytest.mark.parametrize(("statuses", "expected"), [
    ([], "manual"),
    (["pass", "pass"], "pass"),
    (["pass", "skip"], "pass"),
    (["skip", "skip"], "not-applicable"),
    (["pass", "fail", "error"], "fail"),
    (["pass", "error"], "error"),
    (["pass", "warn"], "warn"),
    (["pass", "not-run"], "incomplete"),
    (["fail", "not-run"], "fail"),
    (["pass", "waived"], "waived"),
])
def test_a_control_passes_only_when_all_its_applicable_checks_pass(statuses: list[str], expected: str) -> None:
    assert _control_status(statuses) == expected


def test_checks_json_and_explain_show_the_controls() -> None:
    listed = json.loads(subprocess.run(["regaudit", "checks", "--format", "json"], capture_output=True, text=True,
                                       check=True).stdout)
    ciphers = next(c for c in listed if c["id"] == "tls.ciphers")
    assert {"framework": "nist-800-52r2", "control": "3.3.1", "title": "Cipher suites"} in ciphers["controls"]
    explained = subprocess.run(["regaudit", "explain", "tls.ciphers"], capture_output=True, text=True, check=True)
    assert "nist-800-190 4.2.1: Insecure connections to registries" in explained.stdout


def test_compliance_list_and_show() -> None:
    listed = subprocess.run(["regaudit", "compliance", "list"], capture_output=True, text=True, check=True).stdout
    assert "nist-800-190" in listed and "cis-docker" in listed and "nist-800-52r2" in listed
    shown = json.loads(subprocess.run(["regaudit", "compliance", "show", "nist-800-190", "--format", "json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["source"] == "https://doi.org/10.6028/NIST.SP.800-190"
    bad = subprocess.run(["regaudit", "compliance", "show", "iso-27001"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown compliance framework" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run(["regaudit", "evaluate", str(WEAK / "outside.json"), "--compliance", "nope",
                          "--format", "json", "--output", "/nonexistent"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown compliance framework 'nope'" in bad.stderr


def _view(out: Path, framework: str = "nist-800-190") -> dict:
    report = json.loads((out / "regaudit.json").read_text())
    return next(v for v in report["compliance"] if v["id"] == framework)


def test_json_report_carries_every_control_and_validates(weak: tuple[Path, subprocess.CompletedProcess]) -> None:
    from auditor.reports.json_report import report_schema

    out, _ = weak
    report = json.loads((out / "regaudit.json").read_text())
    jsonschema.Draft202012Validator(report_schema(), format_checker=jsonschema.FormatChecker()).validate(report)
    view = _view(out)
    statuses = {c["id"]: c["status"] for c in view["controls"]}
    assert statuses == {"4.1.1": "fail", "4.1.2": "manual", "4.1.3": "manual", "4.1.4": "manual",
                        "4.1.5": "fail", "4.2.1": "fail", "4.2.2": "fail", "4.2.3": "fail"}
    assert all("controls" in c for c in report["checks"])


def test_hardened_lab_passes_every_automated_control(tmp_path: Path) -> None:
    proc = _evaluate(tmp_path, HARDENED / "outside.json", HARDENED / "inside.json", formats="json")
    assert proc.returncode == 0, proc.stderr
    for framework in ("nist-800-190", "nist-800-52r2", "cis-docker"):
        statuses = {c["status"] for c in _view(tmp_path, framework)["controls"]}
        assert statuses == {"pass", "manual"}, (framework, statuses)


def test_outside_only_audit_leaves_inside_controls_incomplete(tmp_path: Path) -> None:
    _evaluate(tmp_path, HARDENED / "outside.json", frameworks="nist-800-52r2", formats="json")
    statuses = {c["id"]: c["status"] for c in _view(tmp_path, "nist-800-52r2")["controls"]}
    assert statuses == {"3.1": "incomplete", "3.2": "incomplete", "3.3.1": "incomplete", "3.4.1": "pass",
                        "3.5": "manual"}


def test_console_markdown_junit_prometheus_list_every_control(weak: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = weak
    view = _view(out)
    markdown = (out / "regaudit.md").read_text()
    assert "### Compliance: NIST SP 800-190" in markdown
    for control in view["controls"]:
        assert f"{control['status'].upper():<14} {control['id']:<8} {control['title']}" in proc.stdout
        assert f"| {control['id']} | **{control['status']}** | {control['title']} |" in markdown
    xmlschema.XMLSchema(str(FIXTURES / "schemas" / "junit.xsd")).validate(str(out / "regaudit.junit.xml"))
    junit = (out / "regaudit.junit.xml").read_text()
    assert 'name="regaudit.compliance.nist-800-190"' in junit and "4.1.3 Embedded malware" in junit
    families = {f.name: f for f in text_string_to_metric_families((out / "regaudit.prom").read_text())}
    samples = {(s.labels["framework"], s.labels["control"]): s.labels["status"]
               for s in families["regaudit_compliance_control_status"].samples}
    assert samples[("nist-800-190", "4.2.1")] == "fail" and samples[("cis-docker", "3.7")] == "manual"


def test_sarif_has_a_taxonomy_per_framework_and_validates(weak: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = weak
    sarif = json.loads((out / "regaudit.sarif").read_text())
    jsonschema.validate(sarif, json.loads((FIXTURES / "schemas" / "sarif-schema-2.1.0.json").read_text()))
    run = sarif["runs"][0]
    taxonomies = {t["name"]: t for t in run["taxonomies"]}
    taxa = {t["id"]: t for t in taxonomies["nist-800-190"]["taxa"]}
    assert {c["id"]: c["status"] for c in _view(out)["controls"]} == {k: t["properties"]["status"]
                                                                      for k, t in taxa.items()}
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "tls.protocols")
    targets = {(r["target"]["toolComponent"]["name"], r["target"]["id"]) for r in rule["relationships"]}
    assert ("nist-800-190", "4.2.1") in targets and ("nist-800-52r2", "3.1") in targets
    for relationship in rule["relationships"]:
        index = relationship["target"]["toolComponent"]["index"]
        assert run["taxonomies"][index]["name"] == relationship["target"]["toolComponent"]["name"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_html_per_framework_view_in_chromium(weak: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = weak
    report = json.loads((out / "regaudit.json").read_text())
    with chromium_page() as watched:
        page = watched.page
        page.goto((out / "regaudit.html").as_uri())
        rows = "rows => rows.map(r => [r.dataset.control, r.dataset.status])"
        for view in report["compliance"]:
            page.select_option("#framework-select", view["id"])
            shown = page.locator("div.framework:not(.hidden) tr.control").evaluate_all(rows)
            assert shown == [[c["id"], c["status"]] for c in view["controls"]], view["id"]
            assert page.locator("div.framework.hidden tr.control").count() == sum(
                len(v["controls"]) for v in report["compliance"] if v["id"] != view["id"])
        page.select_option("#framework-select", "nist-800-190")
        page.locator("#compliance").screenshot(path=str(out / "compliance.png"))
    assert watched.console_errors + watched.page_errors == []


def test_shipped_frameworks_are_valid_against_the_schema() -> None:
    """The run skips the JSON Schema for the shipped frameworks (start-up cost): this test is the validation."""
    from importlib import resources

    from auditor import compliance

    names = [e.name for e in resources.files("auditor.compliance").iterdir() if e.name.endswith(".yaml")]
    assert names
    for name in names:
        text = resources.files("auditor.compliance").joinpath(name).read_text(encoding="utf-8")
        assert compliance._parse(name, text, schema=True) == compliance._parse(name, text), name
    with pytest.raises(UsageError, match="compliance framework bad.yaml: at controls.0: 'title' is a required"):
        compliance._parse("bad.yaml", "id: bad\ntitle: t\npublisher: p\nversion: '1'\nsource: https://example.org/\n"
                          "controls: [{id: c1, checks: [tls.protocols]}]\n", schema=True)
