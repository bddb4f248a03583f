"""The outside auth, exposure and header checks against the real lab, from its namespaces.

hardened passes all six (auth.token-service is `skip`: its challenge is Basic); weak fails
exactly its seeded auth/exposure/header defects (tests/lab/defects/weak.yaml); token passes,
passively and with --active. Every run is grepped for the password.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hostile.run import AuditRun, audit
from lab import LabInfo

from auditor.model import Status

pytestmark = pytest.mark.integration

MINE = ("auth.anonymous-denied", "auth.challenge-over-tls", "auth.token-service", "net.registry-port-exposed",
        "http.nosniff", "http.hsts")
DEFECTS = Path(__file__).resolve().parents[1] / "lab" / "defects" / "weak.yaml"


def _creds(info: LabInfo) -> dict[str, str]:
    return {"REGAUDIT_USERNAME": info.username, "REGAUDIT_PASSWORD": info.password_file.read_text().strip()}


def _run(info: LabInfo, tmp: Path, role: str, *extra: str) -> AuditRun:
    env = _creds(info)
    run = audit(info.url, tmp, "--ca-bundle", str(info.ca), "--select", "auth,net,http", "--deadline", "120",
                *extra, env=env, netns=info.namespaces[role], timeout=180)
    assert not run.killed and run.report_text, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    password = env["REGAUDIT_PASSWORD"]
    for text in (run.stdout, run.stderr, run.report_text, run.evidence_text):
        assert password not in text, "the password leaked into the output"
    assert set(run.statuses()) == set(MINE), run.statuses()
    return run


def test_hardened_passes_from_ci_and_outsider(lab_hardened: LabInfo, tmp_path: Path) -> None:
    for role in ("ci", "outsider"):
        run = _run(lab_hardened, tmp_path / role, role)
        expected = dict.fromkeys(MINE, Status.PASS) | {"auth.token-service": Status.SKIP}
        assert run.statuses() == expected, run.stdout
        assert run.rc == 0
        pull = [r for r in run.results("auth.anonymous-denied") if "/manifests/" in r["subject"]]
        assert pull and "probe" not in pull[0]["message"], "the pull was not on a repository from the catalog"
        net = run.results("net.registry-port-exposed")
        assert {r["subject"].split(" ")[-1] for r in net} == {"(ipv4)", "(ipv6)"}
        v4, v6 = lab_hardened.addresses["registry"]["v4"], lab_hardened.addresses["registry"]["v6"]
        assert {r["subject"] for r in run.results("auth.challenge-over-tls")} == {
            f"http://{v4}:80/v2/", f"http://[{v6}]:80/v2/"}
        assert "basic" in run.results("auth.token-service")[0]["message"]


@pytest.mark.parametrize("role", ["ci", "outsider"])
def test_weak_fails_exactly_its_seeded_defects(lab_weak: LabInfo, tmp_path: Path, role: str) -> None:
    doc = yaml.safe_load(DEFECTS.read_text())
    seeded = {c for d in doc["defects"] for c in d["checks"]} & set(MINE)
    run = _run(lab_weak, tmp_path, role)
    failing = {c for c, s in run.statuses().items() if s is Status.FAIL}
    assert failing == seeded, run.stdout
    assert run.status("auth.token-service") is Status.SKIP
    assert run.rc == 1
    exposed = run.results("net.registry-port-exposed")
    v4, v6 = lab_weak.addresses["registry"]["v4"], lab_weak.addresses["registry"]["v6"]
    assert {r["subject"] for r in exposed} == {f"{v4}:5000 (ipv4)", f"[{v6}]:5000 (ipv6)"}
    assert all(r["status"] == "fail" and "WITHOUT authentication" in r["message"] for r in exposed)
    assert all(r["status"] == "fail" and "200" in r["message"] for r in run.results("auth.anonymous-denied"))
    plaintext = {r["subject"]: r["status"] for r in run.results("auth.challenge-over-tls")}
    assert plaintext == {f"http://{v4}:80/v2/": "pass", f"http://[{v6}]:80/v2/": "pass",
                         f"http://{v4}:5000/v2/": "fail", f"http://[{v6}]:5000/v2/": "fail"}
    nosniff = run.results("http.nosniff")
    assert nosniff[0]["status"] == "fail" and nosniff[0]["observed"]["x-content-type-options"] is None


def test_token_passes_passively_and_actively(lab_token: LabInfo, tmp_path: Path) -> None:
    passive = _run(lab_token, tmp_path / "passive", "ci")
    assert passive.statuses() == dict.fromkeys(MINE, Status.PASS), passive.stdout
    untested = {r["subject"] for r in passive.results("auth.token-service") if r["status"] == "skip"}
    assert untested == {"anonymous token", "pull-only token"}
    active = _run(lab_token, tmp_path / "active", "ci", "--active")
    assert active.statuses() == dict.fromkeys(MINE, Status.PASS), active.stdout
    by_subject = {r["subject"]: r for r in active.results("auth.token-service")}
    assert set(by_subject) == {"token realm", "token service", "bad credentials", "anonymous token",
                               "pull-only token"}
    assert all(r["status"] == "pass" for r in by_subject.values())
    assert "cannot start an upload" in by_subject["anonymous token"]["message"]
    assert "cannot start an upload" in by_subject["pull-only token"]["message"]


def test_firewall_variant_registry_port_by_vantage(lab_firewall: LabInfo, tmp_path: Path) -> None:
    """The registry listens on routable addresses behind the guide's rules (and their IPv6 twins):
    the ci network is an allowed source, so the port is reachable (fail) from there; the outsider
    is dropped, so it is filtered (pass), and the connect timeout keeps the run short."""
    outsider = _run(lab_firewall, tmp_path / "outsider", "outsider")
    net = outsider.results("net.registry-port-exposed")
    assert len(net) == 2 and all(r["status"] == "pass" for r in net), net
    assert any("filtered" in r["message"] for r in net), "the DROP rules were not observed as a timeout"
    assert outsider.seconds < 30
    ci = _run(lab_firewall, tmp_path / "ci", "ci")
    net = ci.results("net.registry-port-exposed")
    assert len(net) == 2 and all(r["status"] == "fail" for r in net), net
    assert all("demands authentication" in r["message"] or "WITHOUT" in r["message"] for r in net)
    assert ci.status("auth.challenge-over-tls") is Status.FAIL
