"""Containerised registries on a real Docker Engine: the whole auditor on `container-hardened` and
`container-weak` (tests/lab/containers.py), from the registry host's namespace (inside, the engine
found through DOCKER_HOST) and from the outsider's (outside), judged together with `regaudit evaluate`;
and the firewall evaluator's verdicts against real TCP connects from every lab namespace, IPv4 and IPv6.

One dockerd per variant per session (session-scoped lab fixtures with leases).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from auditor.checks.firewall import scene_of
from lab import LabInfo

from auditor.judge.firewall.assemble import assemble
from auditor.judge.firewall.reach import reach, route_dev

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "lab-profile.yaml"
ROLES = ("proxy", "ci", "runtime", "outsider")
PORT = 5000


@dataclass(frozen=True)
class Audit:
    report: dict[str, Any]
    inside: dict[str, Any]
    outside: dict[str, Any]

    def statuses(self) -> dict[str, str]:
        return dict(self.report["scores"]["checks"])

    def failing(self) -> set[str]:
        return {r["check"] for r in self.report["results"] if r["status"] in ("fail", "error")}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def audit_lab(info: LabInfo, out: Path) -> Audit:
    raw = info.raw
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REGAUDIT_", "DOCKER_"))},
           "REGAUDIT_STATE_DIR": str(out / "state")}
    common = ["--ca-bundle", raw["tls"]["ca"], "--cosign-key", raw["cosign"]["public_key"],
              "--scan-dir", raw["scan_dir"], "--username", raw["auth"]["username"],
              "--password-file", raw["auth"]["password_file"], "--profile", str(PROFILE),
              "--no-progress", "--format", "json"]
    _run(["ip", "netns", "exec", info.ns("outsider"), "regaudit", "audit", raw["url"], *common,
          "--evidence-out", str(out / "outside.json"), "--output", str(out / "outside")], env)
    _run(["ip", "netns", "exec", info.ns("registry"), "env", f"DOCKER_HOST={raw['docker']['host']}",
          "regaudit", "audit", "--inside", *common, "--evidence-out", str(out / "inside.json"),
          "--output", str(out / "inside")], env)
    _run(["regaudit", "evaluate", str(out / "outside.json"), str(out / "inside.json"), "--profile", str(PROFILE),
          "--format", "json", "--output", str(out / "merged")], env)
    return Audit(json.loads((out / "merged" / "regaudit.json").read_text()),
                 json.loads((out / "inside" / "regaudit.json").read_text()),
                 json.loads((out / "outside" / "regaudit.json").read_text()))


@pytest.fixture(scope="module")
def hardened_audit(lab_container_hardened: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Audit:
    return audit_lab(lab_container_hardened, tmp_path_factory.mktemp("container-hardened"))


@pytest.fixture(scope="module")
def weak_audit(lab_container_weak: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Audit:
    return audit_lab(lab_container_weak, tmp_path_factory.mktemp("container-weak"))


def test_container_hardened_scores_100_with_every_check_judged(hardened_audit: Audit) -> None:
    report = hardened_audit.report
    bad = [r for r in report["results"] if r["status"] not in ("pass", "skip")]
    assert not bad, bad
    assert report["scores"]["overall"] == 100.0 and report["scores"]["grade"] == "A"
    skipped = {c for c, status in hardened_audit.statuses().items() if status == "skip"}
    # nginx sits behind Apache: the checks of nginx at the edge skip it, with the reason
    assert skipped == {"registry.token-config", "auth.token-service", "admission.policy", "proxy.nginx-tls",
                       "proxy.nginx-auth", "proxy.nginx-recipe", "registry.notifications"}, skipped
    # the containers were judged, not the host: runtime facts, the bind-mounted config, the container tmpfs
    runtime = [r for r in report["results"] if r["check"] == "container.runtime"]
    assert {r["subject"] for r in runtime} == {"container registry (registry)", "container nginx (nginx)"}
    assert all(r["status"] == "pass" for r in runtime)
    debug = next(r for r in report["results"] if r["check"] == "registry.debug-loopback")
    assert "live listener 127.0.0.1:5001 in container registry" in debug["message"], debug["message"]
    persistent = next(r for r in report["results"] if r["check"] == "tmpfs.persistent")
    assert persistent["status"] == "pass" and "--tmpfs /var/lib/nginx" in persistent["message"]


def test_container_hardened_outside_view_alone(hardened_audit: Audit) -> None:
    outside = hardened_audit.outside
    assert not [r for r in outside["results"] if r["status"] in ("fail", "error")]


def _defects() -> list[dict[str, Any]]:
    return list(yaml.safe_load((REPO / "tests" / "lab" / "defects" / "container-weak.yaml").read_text())["defects"])


def test_container_weak_fails_exactly_its_seeded_defects(weak_audit: Audit) -> None:
    expected = set().union(*(set(d["checks"]) for d in _defects()))
    failing = weak_audit.failing()
    assert failing == expected, {"missing": sorted(expected - failing), "extra": sorted(failing - expected)}
    assert not [r for r in weak_audit.report["results"] if r["status"] == "error"]


def test_container_weak_names_the_dnat_bypass_with_its_rule(weak_audit: Audit) -> None:
    results = {r["subject"]: r for r in weak_audit.report["results"] if r["check"] == "firewall.registry-port"}
    v4 = results["IPv4"]
    assert v4["status"] == "fail"
    assert "let in by iptables filter DOCKER rule" in v4["message"] and "-j ACCEPT" in v4["message"]
    assert "-> 172.30.0.10:5000" in v4["message"], "the DNAT to the container is named"
    # IPv6 goes through docker-proxy (a local listener): the guide's ip6tables INPUT rules hold
    assert results["IPv6"]["status"] == "pass"
    runtime = {r["subject"]: r for r in weak_audit.report["results"] if r["check"] == "container.runtime"}
    registry = runtime["container registry (registry)"]["message"]
    assert "adds capabilities NET_ADMIN, SYS_ADMIN" in registry and "read-write" in registry
    assert "restart policy no" in registry
    # the outsider itself sees the published port (IPv4 only: DNAT), without auth
    exposed = [r for r in weak_audit.outside["results"] if r["check"] == "net.registry-port-exposed"]
    assert [r["subject"] for r in exposed if r["status"] == "fail"] == ["10.0.0.10:5000 (ipv4)"]


# ---------------------------------------------------------------- evaluator vs real connects
GATHER = """
import asyncio, json, sys
from auditor.gather import Gatherer
from auditor.plugins import load_probes
from auditor.target import Target
records = asyncio.run(Gatherer(load_probes(), Target(inside=True), None, 60.0).gather(["host.firewall"]))
rec = records["host.firewall"]
print(json.dumps({"state": rec.state, "value": rec.value, "reason": rec.reason}))
"""
CONNECT = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()"


def gather(info: LabInfo) -> dict[str, Any]:
    out = subprocess.run(["ip", "netns", "exec", info.ns("registry"), "env", f"DOCKER_HOST={info['docker']['host']}",
                          sys.executable, "-c", GATHER], capture_output=True, text=True, timeout=120, check=True)
    record = json.loads(out.stdout)
    assert record["state"] == "ok", record["reason"]
    return dict(record["value"])


async def _connect(ns: str, host: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, host, str(PORT), "1.5",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


def connects(info: LabInfo) -> dict[tuple[str, str], bool]:
    reg = info.addresses["registry"]
    keys = [(role, fam) for role in (*ROLES, "registry") for fam in ("v4", "v6")]

    async def all_of() -> list[bool]:
        return await asyncio.gather(*(_connect(info.ns(role), reg[fam]) for role, fam in keys))

    return dict(zip(keys, asyncio.run(all_of()), strict=True))


def predictions(info: LabInfo, facts: dict[str, Any]) -> dict[tuple[str, str], tuple[bool, str]]:
    """(role, family) -> (the connect opens, why): the evaluator's verdict for the first SYN, and a
    listener behind it (the DNAT target container, or a host socket on the destination: docker-proxy)."""
    asm = assemble(facts["rulesets"])
    assert not asm.problems, asm.problems
    scene = scene_of(facts, PORT)
    reg = info.addresses["registry"]
    out = {}
    for role in (*ROLES, "registry"):
        for fam in ("v4", "v6"):
            dst = ipaddress.ip_address(reg[fam])
            src = dst if role == "registry" else ipaddress.ip_address(info.addresses[role][fam])
            iif = "lo" if role == "registry" else route_dev(scene.routes, dst.version, int(src))
            assert iif, f"no route to {src} recorded"
            r = reach(asm, scene, dst.version, src, dst, iif)
            assert r.verdict.result != "error", r.verdict.reason
            listening = r.path in ("forward", "output") or any(a == dst or (a.is_unspecified and (a.version == 6 or
                                                                                     a.version == dst.version))
                                                   for a in scene.listen or [])
            decisive = r.verdict.decisive
            out[(role, fam)] = (r.verdict.result == "accept" and listening,
                                f"{r.path} {r.verdict.result} by {decisive.chain if decisive else '?'} "
                                f"{decisive.rule if decisive else ''}; listener {listening}")
    return out


def compare(info: LabInfo) -> dict[tuple[str, str], bool]:
    facts = gather(info)
    predicted = predictions(info, facts)
    real = connects(info)
    wrong = {k: (predicted[k], real[k]) for k in real if predicted[k][0] != real[k]}
    assert not wrong, f"evaluator (first) vs real connect (second) differ: {wrong}"
    return real


def test_evaluator_agrees_with_real_connects_on_container_hardened(lab_container_hardened: LabInfo) -> None:
    real = compare(lab_container_hardened)
    # published on 127.0.0.1 only: nothing reaches 10.0.0.10:5000 / [fd00::10]:5000 from anywhere
    assert not any(real.values()), real


def test_evaluator_agrees_with_real_connects_on_container_weak(lab_container_weak: LabInfo) -> None:
    real = compare(lab_container_weak)
    # -p 5000:5000: IPv4 is DNATed past the INPUT rules (everyone, the outsider included); IPv6 goes
    # to docker-proxy through INPUT, where the guide's ip6tables rules keep the outsider out
    assert all(real[(role, "v4")] for role in (*ROLES, "registry"))
    assert {role: real[(role, "v6")] for role in (*ROLES, "registry")} == {
        "proxy": True, "ci": True, "runtime": True, "outsider": False, "registry": True}


@pytest.mark.parametrize("variant", ["container-hardened", "container-weak"])
def test_lab_selftest_verifies_every_property_and_seeded_defect(variant: str, request: pytest.FixtureRequest) -> None:
    from lab import selftest

    info = request.getfixturevalue("lab_" + variant.replace("-", "_"))
    report = selftest.run(info)
    assert report.ok, report.render()
    if variant == "container-weak":
        verified = {r.defect for r in report.results if r.defect}
        assert verified == {d["id"] for d in _defects()}


def test_evaluator_agrees_when_docker_user_drops_everything(lab_container_weak: LabInfo) -> None:
    """A DOCKER-USER that drops every forwarded packet: the namespaces are cut off over IPv4 (FORWARD),
    the host's own connection to its address is not (nat OUTPUT, then the output hook), IPv6 is
    unaffected (docker-proxy, INPUT)."""
    ns = lab_container_weak.ns("registry")
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-I", "DOCKER-USER", "1", "-j", "DROP"], check=True)
    try:
        real = compare(lab_container_weak)
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "iptables", "-D", "DOCKER-USER", "1"], check=True)
    assert {role: real[(role, "v4")] for role in (*ROLES, "registry")} == {
        "proxy": False, "ci": False, "runtime": False, "outsider": False, "registry": True}
    assert real[("ci", "v6")] and not real[("outsider", "v6")]
