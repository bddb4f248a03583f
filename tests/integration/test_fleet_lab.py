"""A fleet through Ansible on the lab: the documented two commands, against real OpenSSH servers.

Targets (inventory group `registries`): the hardened and weak labs' registry hosts (sshd started in
their registry namespaces), an offline host holding only the weak lab's configs (its own rgs-
namespace, gathered with Python 3.9 when this machine has one), and a host that cannot be reached.
Outside and content evidence comes from a delegate host per network zone (sshd in each lab's
outsider namespace, running the normal CLI). Evidence is signed on the hosts with an Ed25519 key.
Each target's verdicts are compared with a local audit of the same host (the way
test_lab_audit.py audits it: outside from the outsider namespace, inside on the registry host,
judged together with `regaudit evaluate`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import xmlschema
import yaml
from headless import CHROMIUM, chromium_page
from lab.fleet import FleetLab, find_python39
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "lab-profile.yaml"
PLAYBOOK = REPO / "contrib" / "ansible" / "regaudit-fleet.yml"
SCHEMAS = REPO / "tests" / "fixtures" / "schemas"
ARTIFACTS = REPO / "test-artifacts"
PY39 = find_python39()
FORMATS = "html,json,sarif,junit,prometheus"
WAIVED = "registry.headers"


@dataclass
class Fleet:
    base: Path
    inventory: Path
    evidence: Path
    out: Path
    playbook: subprocess.CompletedProcess
    judged: subprocess.CompletedProcess
    summary: dict
    env: dict
    labs: dict
    public_key: Path
    waivers_profile: Path
    leftovers: set[Path]

    def target(self, name: str) -> dict:
        return next(t for t in self.summary["targets"] if t["name"] == name)


def _sign_keys(base: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = base / "evidence-sign.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public = base / "evidence-sign.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _outside_args(raw: dict) -> list[str]:
    return ["--ca-bundle", raw["tls"]["ca"], "--cosign-key", raw["cosign"]["public_key"], "--scan-dir",
            raw["scan_dir"], "--username", raw["auth"]["username"], "--password-file", raw["auth"]["password_file"],
            "--profile", str(PROFILE)]


def _env(base: Path) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("REGAUDIT_", "ANSIBLE_"))},
            "REGAUDIT_STATE_DIR": str(base / "state")}


@pytest.fixture(scope="module")
def fleet(lab_hardened, lab_weak, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("fleet")
    lab = FleetLab(base / "lab")
    try:
        yield _build_and_run(lab, base, {"hardened": lab_hardened.raw, "weak": lab_weak.raw})
    finally:
        lab.close()


def _copied_to_hosts() -> set[Path]:
    """What the role puts on hosts and delegates (one filesystem here): its temp directories."""
    return {*Path("/tmp").glob("regaudit-gather-*"), *Path("/tmp").glob("regaudit-outside-*")}


def _build_and_run(lab: FleetLab, base: Path, labs: dict) -> Fleet:
    private, public = _sign_keys(base)
    regaudit = shutil.which("regaudit")
    assert regaudit, "regaudit is not on PATH"
    waivers = base / "offline-waivers.yaml"
    waivers.write_text(yaml.safe_dump({"waivers": [{
        "check": WAIVED, "reason": "offline review: the nosniff header is set by the proxy in front",
        "owner": "fleet-test", "expires": "2099-01-01"}]}))
    for name, raw in labs.items():
        lab.ssh_host(name, raw["namespaces"]["registry"], 2201 if name == "hardened" else 2202, {
            "regaudit_url": raw["url"], "regaudit_paths": {"fstab": raw["fstab"]},
            "regaudit_outside_from": f"{name}-zone", "regaudit_outside_args": _outside_args(raw)})
        lab.ssh_host(f"{name}-zone", raw["namespaces"]["outsider"], 2211 if name == "hardened" else 2212)
    weak = labs["weak"]
    offline_ns = lab.namespace("offline")
    offline_vars = {"regaudit_paths": {"registry_config": weak["registry"]["config"],
                                       "nginx_config": weak["nginx"]["config"],
                                       "apache_config": weak["apache"]["config"], "scan_dir": weak["scan_dir"]},
                    "regaudit_cosign_keys": [weak["cosign"]["public_key"]]}
    if PY39:
        offline_vars["regaudit_remote_python"] = PY39
    lab.ssh_host("offline", offline_ns, 2203, offline_vars)
    lab.dead_host("gone", lab.namespace("gone"), 2204, {"regaudit_paths": {}})
    inventory = lab.write_inventory(
        base / "inventory.yml",
        groups={"site_a": ["hardened"], "site_b": ["weak", "gone"], "offline_review": ["offline"],
                "zones": ["hardened-zone", "weak-zone"]},
        group_vars={"offline_review": {"regaudit_waivers": str(waivers)}},
        all_vars={"regaudit_cli": regaudit, "regaudit_evidence_dir": str(base / "evidence"),
                  "regaudit_profile": str(PROFILE), "regaudit_sign_key": str(private),
                  "regaudit_evidence_public_key": str(public)},
    )
    data = yaml.safe_load(inventory.read_text())
    data["all"]["children"]["registries"] = {"children": {"site_a": {}, "site_b": {}, "offline_review": {}}}
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    before = _copied_to_hosts()
    played = lab.run_playbook(PLAYBOOK, inventory)
    lab.end_connections()
    leftovers = _copied_to_hosts() - before
    env = _env(base)
    out = base / "report"
    judged = subprocess.run(["regaudit", "fleet", str(base / "evidence"), "-i", str(inventory), "--format", FORMATS,
                             "--output", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in judged.stderr, judged.stderr
    summary = json.loads((out / "fleet.json").read_text()) if (out / "fleet.json").exists() else {}
    profile = base / "offline-profile.yaml"
    profile.write_text(yaml.safe_dump({"name": "lab", "extends": str(PROFILE),
                                       "waivers": yaml.safe_load(waivers.read_text())["waivers"]}))
    return Fleet(base, inventory, base / "evidence", out, played, judged, summary, env, labs, public, profile,
                 leftovers)


def _verdicts(results: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["check"], r["subject"], r["status"]) for r in results}


def _local_audit(fleet: Fleet, name: str) -> dict:
    """The same host audited locally with the CLI (outside from the outsider, inside on the host)."""
    out = fleet.base / f"local-{name}"
    env = fleet.env
    files = []
    if name in fleet.labs:
        raw = fleet.labs[name]
        common = [*_outside_args(raw), "--no-progress", "--no-history", "--format", "json"]
        for vantage, ns, extra in (("outside", raw["namespaces"]["outsider"], [raw["url"]]),
                                   ("inside", raw["namespaces"]["registry"], ["--inside", "--fstab", raw["fstab"]])):
            proc = subprocess.run(["ip", "netns", "exec", ns, "regaudit", "audit", *extra, *common, "--evidence-out",
                                   str(out / f"{vantage}.json"), "--output", str(out / vantage)],
                                  capture_output=True, text=True, env=env, timeout=600)
            assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr
            files.append(str(out / f"{vantage}.json"))
        profile = str(PROFILE)
    else:
        weak = fleet.labs["weak"]
        proc = subprocess.run(["ip", "netns", "exec", "rgs-offline", "regaudit", "audit", "--inside",
                               "--registry-config", weak["registry"]["config"], "--nginx-config",
                               weak["nginx"]["config"], "--apache-config", weak["apache"]["config"],
                               "--scan-dir", weak["scan_dir"], "--cosign-key", weak["cosign"]["public_key"],
                               "--profile", str(fleet.waivers_profile), "--no-progress", "--no-history",
                               "--format", "json", "--evidence-out", str(out / "inside.json"),
                               "--output", str(out / "inside")], capture_output=True, text=True, env=env, timeout=600)
        assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr
        files.append(str(out / "inside.json"))
        profile = str(fleet.waivers_profile)
    proc = subprocess.run(["regaudit", "evaluate", *files, "--profile", profile, "--format", "json",
                           "--output", str(out / "merged")], capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads((out / "merged" / "regaudit.json").read_text())


def test_the_playbook_gathers_every_reachable_host_and_records_the_unreachable_one(fleet: Fleet) -> None:
    played = fleet.playbook
    assert "Traceback" not in played.stdout + played.stderr
    assert played.returncode == 0, played.stdout[-4000:] + played.stderr[-2000:]
    assert fleet.leftovers == set(), f"the role left files on the hosts: {fleet.leftovers}"
    for name in ("hardened", "weak", "offline"):
        directory = fleet.evidence / name
        assert json.loads((directory / "reach.json").read_text())["reachable"] is True
        assert (directory / "inside.json").is_file() and (directory / "inside.json.sig").is_file()
        inside = json.loads((directory / "inside.json").read_text())
        assert inside["target"]["inside"] is True and inside["target"]["options"] == {"active": False}
        assert inside["gathered_by"]["artifact"] == "regaudit-gather"
    assert (fleet.evidence / "hardened" / "outside.json").is_file() and (fleet.evidence / "weak" / "outside.json").is_file()
    assert not (fleet.evidence / "offline" / "outside.json").exists()
    gone = json.loads((fleet.evidence / "gone" / "reach.json").read_text())
    assert gone["reachable"] is False and gone["msg"]
    assert not (fleet.evidence / "gone" / "inside.json").exists()
    if PY39:
        assert json.loads((fleet.evidence / "offline" / "inside.json").read_text())["gathered_by"]["python"].startswith(
            "3.9.")


def test_each_target_judges_as_a_local_audit_of_the_same_host(fleet: Fleet) -> None:
    for name in ("hardened", "weak", "offline"):
        report = json.loads((fleet.out / "targets" / name / "regaudit.json").read_text())
        local = _local_audit(fleet, name)
        assert _verdicts(report["results"]) == _verdicts(local["results"]), {
            "fleet only": sorted(_verdicts(report["results"]) - _verdicts(local["results"])),
            "local only": sorted(_verdicts(local["results"]) - _verdicts(report["results"]))}
        assert report["target"]["name"] == name
    hardened = fleet.target("hardened")
    assert hardened["state"] == "pass" and hardened["grade"] == "A" and hardened["score"] == 100.0
    assert fleet.target("weak")["state"] == "fail" and fleet.target("weak")["grade"] == "F"
    offline = json.loads((fleet.out / "targets" / "offline" / "regaudit.json").read_text())
    assert any(r["check"] == WAIVED and r["status"] == "waived" for r in offline["results"])


def test_the_unreachable_host_is_an_error_for_that_host_only(fleet: Fleet) -> None:
    assert fleet.judged.returncode == 1, fleet.judged.stdout + fleet.judged.stderr
    gone = fleet.target("gone")
    assert gone["state"] == "error" and gone["reason"].startswith("unreachable") and gone["score"] is None
    assert fleet.summary["counts"] == {"targets": 4, "pass": 1, "fail": 2, "error": 1}
    assert "gone: error: unreachable" in fleet.judged.stdout
    assert not (fleet.out / "targets" / "gone").exists()


def test_fleet_reports_validate_and_name_the_target_in_each_result(fleet: Fleet) -> None:
    from auditor.fleet.report import fleet_schema

    jsonschema.validate(fleet.summary, fleet_schema(), format_checker=jsonschema.FormatChecker())
    worst = fleet.summary["worst_findings"]
    assert worst and worst[0]["severity"] in ("critical", "high")
    assert all(set(w["targets"]) <= {"weak", "offline"} for w in worst)
    sarif = json.loads((fleet.out / "fleet.sarif").read_text())
    jsonschema.validate(sarif, json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))
    results = sarif["runs"][0]["results"]
    assert results and all(r["properties"]["target"] in {"weak", "offline", "gone"} for r in results)
    assert {r["properties"]["target"] for r in results} == {"weak", "offline", "gone"}
    xmlschema.XMLSchema(str(SCHEMAS / "junit.xsd")).validate(str(fleet.out / "fleet.junit.xml"))
    suites = ET.parse(fleet.out / "fleet.junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["regaudit.hardened", "regaudit.weak", "regaudit.gone",
                                               "regaudit.offline"]
    metrics = {f.name: f for f in text_string_to_metric_families((fleet.out / "fleet.prom").read_text())}
    judged = {s.labels["target"]: s.value for s in metrics["regaudit_fleet_target_judged"].samples}
    assert judged == {"hardened": 1.0, "weak": 1.0, "offline": 1.0, "gone": 0.0}
    scores = {s.labels["target"]: s.value for s in metrics["regaudit_fleet_target_score"].samples}
    assert scores["hardened"] == 100.0 and scores["weak"] < 60


def test_history_records_each_target_under_its_name(fleet: Fleet) -> None:
    again = subprocess.run(["regaudit", "fleet", str(fleet.evidence), "-i", str(fleet.inventory), "--format", "json",
                            "--output", str(fleet.base / "again")], capture_output=True, text=True, env=fleet.env,
                           timeout=600)
    assert again.returncode == 1, again.stderr
    summary = json.loads((fleet.base / "again" / "fleet.json").read_text())
    trends = {t["name"]: t["trend"] for t in summary["targets"]}
    assert len(trends["hardened"]) == 2 and len(trends["weak"]) == 2 and trends["gone"] == []
    listed = subprocess.run(["regaudit", "history", "--target", "weak", "--format", "json"], capture_output=True,
                            text=True, env=fleet.env)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 2 and {r["target"] for r in runs} == {"weak"} and {r["grade"] for r in runs} == {"F"}


def test_evidence_altered_after_signing_fails_verification(fleet: Fleet) -> None:
    copy = fleet.base / "tampered"
    shutil.copytree(fleet.evidence, copy)
    inside = copy / "weak" / "inside.json"
    data = json.loads(inside.read_text())
    data["probes"]["config.registry"]["value"]["config"]["http"]["addr"] = "127.0.0.1:5000"  # "fix" the finding
    inside.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    verified = subprocess.run(["regaudit", "verify-report", str(inside), "--key", str(fleet.public_key)],
                              capture_output=True, text=True, env=fleet.env)
    assert verified.returncode == 1 and "INVALID" in verified.stdout
    untouched = subprocess.run(["regaudit", "verify-report", str(copy / "hardened" / "inside.json"), "--key",
                                str(fleet.public_key)], capture_output=True, text=True, env=fleet.env)
    assert untouched.returncode == 0 and "OK" in untouched.stdout
    judged = subprocess.run(["regaudit", "fleet", str(copy), "-i", str(fleet.inventory), "--format", "json",
                             "--no-history", "--output", str(fleet.base / "tampered-report")],
                            capture_output=True, text=True, env=fleet.env, timeout=600)
    summary = json.loads((fleet.base / "tampered-report" / "fleet.json").read_text())
    weak = next(t for t in summary["targets"] if t["name"] == "weak")
    assert judged.returncode == 1 and weak["state"] == "error" and "signature INVALID" in weak["reason"]
    assert next(t for t in summary["targets"] if t["name"] == "hardened")["state"] == "pass"


def test_fleet_dashboard_in_chromium(fleet: Fleet) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    page_url = (fleet.out / "fleet.html").as_uri()
    with chromium_page() as watched:
        page = watched.page
        page.goto(page_url)
        states = dict(page.locator("tr.target").evaluate_all(
            "rows => rows.map(r => [r.dataset.target, r.dataset.state])"))
        assert states == {"hardened": "pass", "weak": "fail", "offline": "fail", "gone": "error"}
        assert "unreachable" in page.locator("tr[data-target=gone]").inner_text()
        assert page.locator("#n-error").inner_text() == "1"
        assert page.locator("tr[data-target=hardened] .grade").inner_text() == "A"
        assert page.locator("tr[data-target=hardened] svg.spark polyline").count() == 1
        assert page.locator("tr.finding").count() == len(fleet.summary["worst_findings"])
        page.locator("th[data-key=score]").click()
        first = page.locator("tr.target").first.get_attribute("data-target")
        page.locator("th[data-key=score]").click()
        assert {first, page.locator("tr.target").first.get_attribute("data-target")} == {"gone", "hardened"}
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "fleet-dashboard.png"), full_page=True)
        page.locator("tr[data-target=weak] a.drill").click()
        page.wait_for_load_state()
        assert page.url == (fleet.out / "targets" / "weak" / "regaudit.html").as_uri()
        assert page.locator("#grade").inner_text() == "F"
    local = {page_url, (fleet.out / "targets" / "weak" / "regaudit.html").as_uri()}
    assert watched.console_errors == [] and set(watched.requests) == local
