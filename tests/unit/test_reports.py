"""Report writers on a real audit: each validates against its official schema or parser.

SARIF against the OASIS SARIF 2.1.0 JSON Schema, JUnit against the Jenkins xunit JUnit XSD
(tests/fixtures/schemas/, sources in SOURCES.md there), Prometheus parsed back with
prometheus_client's parser, HTML opened in a real headless Chromium.
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

from .helpers import FIXTURES

SCHEMAS = FIXTURES / "schemas"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FORMATS = "json,sarif,junit,markdown,prometheus,html"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audit with a failure, an error-free waiver, a warning and a skip, written in every format."""
    tmp = tmp_path_factory.mktemp("reports")
    config = tmp / "config.yml"
    text = (FIXTURES / "registry" / "purging-disabled.yml").read_text()
    text = text.replace("formatter: json", "formatter: text")
    text = text.replace("      dryrun: false\n", "      dryrun: false\n    readonly:\n      enabled: true\n")
    config.write_text(text)
    profile = tmp / "site.yaml"
    profile.write_text(
        "name: site\nextends: seed-hardened\nwaivers:\n"
        "  - {check: registry.log-json, reason: 'SIEM parses text', owner: ops, expires: '2099-12-31'}\n"
    )
    out = tmp / "out"
    proc = subprocess.run(
        ["regaudit", "audit", "--inside", "--registry-config", str(config), "--profile", str(profile),
         "--select", "registry.upload-purging,registry.log-json,registry.readonly-off,registry.token-config,"
         "registry.headers", "--format", FORMATS, "--output", str(out), "--no-progress"],
        capture_output=True, text=True, env=os.environ, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_sarif_validates_against_the_official_schema(reports: Path) -> None:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    sarif = json.loads((reports / "regaudit.sarif").read_text())
    jsonschema.validate(sarif, schema)
    run = sarif["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {"registry.upload-purging", "registry.log-json", "registry.readonly-off",
                          "registry.token-config", "registry.headers"}
    assert "storage.maintenance.uploadpurging" in rules["registry.upload-purging"]["help"]["text"]
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"registry.upload-purging", "registry.log-json", "registry.readonly-off"}
    assert results["registry.upload-purging"]["level"] == "warning"
    assert results["registry.log-json"]["suppressions"][0]["justification"].startswith("SIEM parses text")
    assert run["tool"]["driver"]["rules"][results["registry.upload-purging"]["ruleIndex"]]["id"] == \
        "registry.upload-purging"


def test_junit_validates_against_the_xsd(reports: Path) -> None:
    schema = xmlschema.XMLSchema(str(SCHEMAS / "junit.xsd"))
    document = (reports / "regaudit.junit.xml").read_text()
    schema.validate(document)
    data = schema.to_dict(document)
    suite = data["testsuite"][0]
    assert suite["@name"] == "regaudit.registry"
    assert (suite["@tests"], suite["@failures"], suite["@errors"], suite["@skipped"]) == ("5", "1", "0", "1")
    failing = [c for c in suite["testcase"] if "failure" in c]
    assert failing[0]["@classname"] == "regaudit.registry.registry.upload-purging"


def test_prometheus_textfile_parses_back(reports: Path) -> None:
    families = {f.name: f for f in text_string_to_metric_families((reports / "regaudit.prom").read_text())}
    assert families["regaudit_score"].samples[0].value == pytest.approx(
        json.loads((reports / "regaudit.json").read_text())["scores"]["overall"])
    statuses = {s.labels["check"]: s.labels["status"] for s in families["regaudit_check_status"].samples}
    assert statuses["registry.upload-purging"] == "fail" and statuses["registry.log-json"] == "waived"
    by_severity = {s.labels["severity"]: s.value for s in families["regaudit_failing_results"].samples}
    assert by_severity["medium"] == 1 and by_severity["critical"] == 0
    assert families["regaudit_last_run_timestamp_seconds"].samples[0].value > 1.7e9
    assert "regaudit_last_run_duration_seconds" in families


def test_markdown_summary_lists_findings_and_waivers(reports: Path) -> None:
    text = (reports / "regaudit.md").read_text()
    assert "| FAIL | medium | `registry.upload-purging` |" in text
    assert "| WAIVED | low | `registry.log-json` |" in text
    assert "| `registry.log-json` | * | ops | 2099-12-31 | active |" in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_html_report_in_headless_chromium(reports: Path) -> None:
    html = (reports / "regaudit.html").read_text()
    assert "<link" not in html and "src=\"http" not in html
    with chromium_page() as watched:
        page = watched.page
        page.goto((reports / "regaudit.html").as_uri())
        assert watched.console_errors + watched.page_errors == []
        assert watched.requests == [(reports / "regaudit.html").as_uri()]
        visible = page.locator("tr.result:not(.hidden)")
        assert sorted(visible.evaluate_all("rows => rows.map(r => r.dataset.check)")) == [
            "registry.log-json", "registry.readonly-off", "registry.upload-purging"]
        page.uncheck("input[name=status][value=waived]")
        page.uncheck("input[name=status][value=warn]")
        assert visible.evaluate_all("rows => rows.map(r => r.dataset.check)") == ["registry.upload-purging"]
        page.uncheck("input[name=severity][value=medium]")
        assert visible.count() == 0
        page.check("input[name=severity][value=medium]")
        page.check("input[name=status][value=pass]")
        page.select_option("#area-filter", "registry")
        assert sorted(visible.evaluate_all("rows => rows.map(r => r.dataset.check)")) == [
            "registry.headers", "registry.upload-purging"]
        page.locator("tr.result[data-check='registry.upload-purging'] summary").click()
        assert page.locator("tr.result[data-check='registry.upload-purging'] pre").first.is_visible()
        assert "waiver: SIEM parses text" in page.content()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html-report.png"), full_page=True)
    assert (ARTIFACTS / "html-report.png").stat().st_size > 10_000


def test_streamed_json_report_equals_the_rendered_one(reports: Path) -> None:
    import io

    from auditor.reports.json_report import render_json, stream_json

    from auditor.evidence import EvidenceFile
    from auditor.plugins import load_checks
    from auditor.profile import load_profile
    from auditor.report import AuditReport
    from auditor.runner import RunOptions, Selection, evaluate

    del reports
    evidence = EvidenceFile(target={"url": None, "inside": True}, started_at="2026-11-28T00:00:00+00:00",
                            ended_at="2026-11-28T00:00:01+00:00", judged_at="2026-11-28T00:00:01+00:00",
                            records={}, discovery={})
    report: AuditReport = evaluate(load_checks(), evidence, Selection(load_profile("seed-hardened")), RunOptions())
    buffer = io.BytesIO()
    stream_json(report, buffer)
    assert buffer.getvalue() == render_json(report)
    assert json.loads(buffer.getvalue())["format"] == "regaudit-report/1"
