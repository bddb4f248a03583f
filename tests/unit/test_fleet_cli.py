"""`regaudit fleet` on recorded playbook output: bad input is exit 2 with one line; targets the
playbook could not gather are errors for themselves only; the summary validates against its schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from auditor.fleet.inventory import targets_from
from auditor.fleet.report import fleet_schema

pytestmark = pytest.mark.skipif(shutil.which("ansible-inventory") is None, reason="ansible-core not installed")


def _inventory(path: Path, extra_group_vars: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump({"all": {"children": {
        "registries": {"children": {
            "prod": {"hosts": {"reg-a": {}, "reg-b": {}}, "vars": {"regaudit_profile": "baseline", **(extra_group_vars or {})}},
            "lab": {"hosts": {"reg-c": {"regaudit_url": "https://reg-c.example"}}},
        }},
        "zones": {"hosts": {"delegate": {}}},
    }}}))
    return path


def _run(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["regaudit", *argv], capture_output=True, text=True, timeout=120,
                          env={"PATH": str(Path(shutil.which("regaudit") or "regaudit").parent) + ":/usr/bin:/bin",
                               "REGAUDIT_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path)})


def test_targets_are_the_group_members_with_group_variables(tmp_path: Path) -> None:
    from auditor.fleet.inventory import ansible_inventory

    data = ansible_inventory(str(_inventory(tmp_path / "inv.yml")))
    targets = {t.name: t for t in targets_from(data)}
    assert sorted(targets) == ["reg-a", "reg-b", "reg-c"]
    assert targets["reg-a"].profile == "baseline" and targets["reg-a"].groups == ("prod",)
    assert targets["reg-c"].url == "https://reg-c.example" and targets["reg-c"].profile is None


def test_unreachable_and_ungathered_targets_are_errors_for_themselves(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path / "inv.yml")
    evidence = tmp_path / "evidence"
    (evidence / "reg-a").mkdir(parents=True)
    (evidence / "reg-a" / "reach.json").write_text(json.dumps({"reachable": False, "msg": "Connection refused"}))
    (evidence / "reg-c").mkdir()
    (evidence / "reg-c" / "reach.json").write_text(json.dumps({"reachable": True, "msg": ""}))
    proc = _run("fleet", str(evidence), "-i", str(inventory), "--format", "json,html,sarif,junit,prometheus",
                "--output", str(tmp_path / "out"), tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((tmp_path / "out" / "fleet.json").read_text())
    jsonschema.validate(summary, fleet_schema(), format_checker=jsonschema.FormatChecker())
    reasons = {t["name"]: (t["state"], t["reason"]) for t in summary["targets"]}
    assert reasons["reg-a"] == ("error", "unreachable: Connection refused")
    assert reasons["reg-b"][0] == "error" and "recorded nothing" in reasons["reg-b"][1]
    assert reasons["reg-c"] == ("error", "no inside evidence was fetched from the host")
    assert "delegate" not in reasons
    sarif = json.loads((tmp_path / "out" / "fleet.sarif").read_text())
    assert {r["properties"]["target"] for r in sarif["runs"][0]["results"]} == {"reg-a", "reg-b", "reg-c"}


@pytest.mark.parametrize("argv, message", [
    (["fleet", "{tmp}/missing", "-i", "{inv}"], "no such evidence directory"),
    (["fleet", "{tmp}", "-i", "{tmp}/nope.yml"], "--inventory"),
    (["fleet", "{tmp}", "-i", "{inv}", "--group", "web"], "no group 'web'"),
    (["fleet", "{tmp}", "-i", "{inv}", "--format", "pdf"], "unknown fleet report format"),
    (["fleet", "{tmp}", "-i", "{inv}", "--fail-on", "severe"], "--fail-on"),
    (["fleet", "{tmp}", "-i", "{inv}", "--profile", "{tmp}/none.yaml"], "profile"),
    (["fleet", "{tmp}", "-i", "{inv}", "--evidence-key", "{tmp}/none.pem"], "public key"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, argv: list[str], message: str) -> None:
    inventory = _inventory(tmp_path / "inv.yml")
    args = [a.format(tmp=tmp_path, inv=inventory) for a in argv]
    proc = _run(*args, tmp_path=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_bad_waivers_file_is_a_usage_error(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - check: tls.protocols\n")
    inventory = _inventory(tmp_path / "inv.yml", {"regaudit_waivers": str(waivers)})
    proc = _run("fleet", str(tmp_path), "-i", str(inventory), tmp_path=tmp_path)
    assert proc.returncode == 2 and "regaudit_waivers" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
