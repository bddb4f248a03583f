"""The CLI as a user meets it: exit codes, one-line errors, reports, evaluate, the catalog."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
from auditor.reports.json_report import report_schema

from .helpers import FIXTURES

GUIDE = FIXTURES / "registry" / "guide-config.yml"
PURGING_OFF = FIXTURES / "registry" / "purging-disabled.yml"


def regaudit(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_") or k == "REGAUDIT_STATE_DIR"}
    environ.update(env or {})
    return subprocess.run(["regaudit", *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=120)


CONFIG_CHECKS = ",".join([
    "registry.config-valid", "registry.log-json", "registry.delete-enabled", "registry.upload-purging",
    "registry.host-https", "registry.headers", "registry.health-check", "registry.debug-loopback",
    "registry.readonly-off", "registry.token-config",
])


def audit(tmp_path: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    """An inside audit of the config-reading registry checks only (the ones issue 2 asks for)."""
    return regaudit("audit", "--inside", "--registry-config", str(config), "--no-progress",
                    "--select", CONFIG_CHECKS, "--output", str(tmp_path / "out"), *extra)


def validate(report: dict) -> None:
    jsonschema.Draft202012Validator(report_schema(), format_checker=jsonschema.FormatChecker()).validate(report)


def test_guide_config_passes_every_registry_config_check(tmp_path: Path) -> None:
    proc = audit(tmp_path, GUIDE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "regaudit.json").read_text())
    validate(report)
    statuses = {r["check"]: r["status"] for r in report["results"] if r["check"].startswith("registry.")}
    config_checks = {k: v for k, v in statuses.items() if k not in ("registry.token-config",)}
    assert set(config_checks.values()) == {"pass"}, statuses
    assert statuses["registry.token-config"] == "skip"
    assert report["profile"]["name"] == "seed-hardened" and len(report["profile"]["sha256"]) == 64


def test_purging_disabled_fails_exactly_upload_purging_and_gates_by_severity(tmp_path: Path) -> None:
    medium = audit(tmp_path, PURGING_OFF, "--fail-on", "medium")
    assert medium.returncode == 1, medium.stderr
    report = json.loads((tmp_path / "out" / "regaudit.json").read_text())
    validate(report)
    failing = [r for r in report["results"] if r["status"] in ("fail", "error")]
    assert [r["check"] for r in failing] == ["registry.upload-purging"]
    assert failing[0]["observed"]["enabled"].startswith("storage.maintenance.uploadpurging.enabled=False")
    assert failing[0]["expected"]["enabled"] is True
    assert audit(tmp_path, PURGING_OFF, "--fail-on", "critical").returncode == 0
    assert "FAIL" in medium.stdout and "registry.upload-purging" in medium.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["audit", "--inside", "--registry-config", "/nonexistent/config.yml"], "no such file or directory"),
    (["audit", "ftp://registry.example.com"], "scheme must be https"),
    (["audit", "https://user:pw@registry.example.com"], "credentials in the URL are refused"),
    (["audit", "https://registry.example.com/v2/"], "base URL only"),
    (["audit", "https://bad host"], "bad registry URL"),
    (["audit"], "nothing to audit"),
    (["audit", "--inside", "--fail-on", "urgent"], "unknown severity"),
    (["audit", "--inside", "--format", "pdf"], "unknown report format"),
    (["explain", "registry.nope"], "no check 'registry.nope'"),
    (["evaluate", "/nonexistent/evidence.json"], "cannot read evidence file"),
])
def test_user_errors_get_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = regaudit(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_malformed_profile_is_exit_2_naming_file_and_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: site\nseverity:\n  registry.log-json: urgent\n")
    proc = regaudit("audit", "--inside", "--registry-config", str(GUIDE), "--profile", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "severity.registry.log-json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_reproduces_the_live_results_and_rejudges_under_another_profile(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.json"
    live = audit(tmp_path, PURGING_OFF, "--evidence-out", str(evidence))
    assert live.returncode == 0
    live_report = json.loads((tmp_path / "out" / "regaudit.json").read_text())
    assert oct(evidence.stat().st_mode & 0o777) == "0o600"
    proc = regaudit("evaluate", str(evidence), "--select", CONFIG_CHECKS, "--output", str(tmp_path / "eval"))
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "eval" / "regaudit.json").read_text())
    validate(again)
    assert again["results"] == live_report["results"]
    assert again["judged_at"] == live_report["judged_at"]
    relaxed = tmp_path / "relaxed.yaml"
    relaxed.write_text("name: relaxed\nextends: seed-hardened\nseverity: {registry.upload-purging: critical}\n")
    proc = regaudit("evaluate", str(evidence), "--profile", str(relaxed), "--select", CONFIG_CHECKS,
                    "--output", str(tmp_path / "eval2"), "--fail-on", "critical")
    assert proc.returncode == 1
    rejudged = json.loads((tmp_path / "eval2" / "regaudit.json").read_text())
    assert {r["severity"] for r in rejudged["results"] if r["check"] == "registry.upload-purging"} == {"critical"}


def test_expired_waiver_no_longer_waives(tmp_path: Path) -> None:
    profile = tmp_path / "waived.yaml"
    profile.write_text(
        "name: waived\nextends: seed-hardened\nwaivers:\n"
        "  - {check: registry.upload-purging, reason: 'disk is tiny', owner: ops, expires: '2020-01-01'}\n"
        "  - {check: registry.upload-purging, subject: '/nowhere/*', reason: r, owner: o, expires: '2099-01-01'}\n"
    )
    proc = audit(tmp_path, PURGING_OFF, "--profile", str(profile), "--fail-on", "medium")
    assert proc.returncode == 1
    report = json.loads((tmp_path / "out" / "regaudit.json").read_text())
    validate(report)
    result = next(r for r in report["results"] if r["check"] == "registry.upload-purging")
    assert result["status"] == "fail" and result["waiver"]["expired"] is True
    assert report["waivers"][0]["expired"] is True and report["waivers"][0]["results_waived"] == 0
    current = tmp_path / "current.yaml"
    current.write_text(profile.read_text().replace("2020-01-01", "2099-01-01"))
    assert audit(tmp_path, PURGING_OFF, "--profile", str(current), "--fail-on", "medium").returncode == 0


def test_checks_json_lists_full_metadata_and_explain_explains() -> None:
    proc = regaudit("checks", "--format", "json")
    assert proc.returncode == 0
    catalog = {c["id"]: c for c in json.loads(proc.stdout)}
    purging = catalog["registry.upload-purging"]
    for key in ("title", "severity", "vantage", "area", "rationale", "passes_when", "remediation", "guide"):
        assert purging[key], key
    assert purging["severity"] == "medium" and purging["vantage"] == "inside"
    explained = regaudit("explain", "registry.upload-purging")
    assert explained.returncode == 0 and "uploadpurging" in explained.stdout and "Remediation" in explained.stdout


def test_profiles_list_and_show() -> None:
    listed = regaudit("profiles")
    assert {"seed-hardened", "baseline", "strict"} <= {line.split()[0] for line in listed.stdout.splitlines()}
    shown = regaudit("profiles", "show", "strict")
    assert shown.returncode == 0 and "warn_as_fail: true" in shown.stdout
