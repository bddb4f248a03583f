"""Inside checks on the real lab: `regaudit audit --inside` run in the registry host's namespace.

hardened passes every host check; weak fails exactly its seeded defects among them
(tests/lab/defects/weak.yaml), each with evidence; discovery finds the namespace's own deployment
although several lab variants run on this machine at once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

DEFECTS = Path(__file__).resolve().parent.parent / "lab" / "defects" / "weak.yaml"
OWNED = (
    "registry.bind-loopback", "registry.stale-uploads", "registry.health-check", "registry.debug-loopback",
    "tmpfs.mounted", "tmpfs.size", "tmpfs.persistent", "files.tls-key", "files.htpasswd", "files.configs",
    "storage.usage", "storage.reclaimable",
)


def audit_inside(lab: Any, out: Path) -> dict[str, Any]:
    binary = shutil.which("regaudit")
    assert binary, "regaudit is not installed (pip install -e .)"
    argv = ["ip", "netns", "exec", lab.ns("registry"), binary, "audit", "--inside", "--fstab", lab["fstab"],
            "--no-progress", "--format", "json", "--output", str(out), "--evidence-out", str(out / "evidence.json")]
    for check_id in OWNED:
        argv += ["--select", check_id]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (0, 1), proc.stderr + proc.stdout
    report: dict[str, Any] = json.loads((out / "regaudit.json").read_text())
    report["_out"] = str(out)
    return report


def by_check(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for result in report["results"]:
        grouped.setdefault(result["check"], []).append(result)
    return grouped


@pytest.fixture(scope="module")
def hardened_report(lab_hardened: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return audit_inside(lab_hardened, tmp_path_factory.mktemp("inside-hardened"))


@pytest.fixture(scope="module")
def weak_report(lab_weak: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return audit_inside(lab_weak, tmp_path_factory.mktemp("inside-weak"))


def test_hardened_passes_every_host_check(hardened_report: dict[str, Any]) -> None:
    grouped = by_check(hardened_report)
    assert set(grouped) == set(OWNED)
    bad = {c: [r for r in rs if r["status"] != "pass"] for c, rs in grouped.items()}
    assert not {c: rs for c, rs in bad.items() if rs}, bad
    assert hardened_report["exit_code"] == 0


def test_weak_fails_exactly_its_seeded_defects(weak_report: dict[str, Any]) -> None:
    seeded = {c for d in yaml.safe_load(DEFECTS.read_text())["defects"] for c in d["checks"]} & set(OWNED)
    grouped = by_check(weak_report)
    failing = {c for c, rs in grouped.items() if any(r["status"] == "fail" for r in rs)}
    assert failing == seeded
    for check_id in set(OWNED) - seeded:
        assert {r["status"] for r in grouped[check_id]} == {"pass"}, grouped[check_id]
    for check_id in seeded:
        for result in grouped[check_id]:
            if result["status"] == "fail":
                assert result["observed"] and result["expected"], result


def test_weak_evidence_names_socket_process_upload_mount_and_modes(lab_weak: Any,
                                                                  weak_report: dict[str, Any]) -> None:
    grouped = by_check(weak_report)
    (bind,) = grouped["registry.bind-loopback"]
    assert bind["observed"]["process"]["pid"] == {p["name"]: p["pid"] for p in lab_weak["processes"]}["registry"]
    assert "[::]:5000" in [s["endpoint"] for s in bind["observed"]["non_loopback"]]
    (stale,) = grouped["registry.stale-uploads"]
    seeded = {u["uuid"] for u in lab_weak["stale_uploads"]}
    assert {i["upload"] for i in stale["observed"]} == seeded and stale["subject"] == "myapp/backend"
    mounted = grouped["tmpfs.mounted"]
    assert {r["observed"]["mountpoint"] for r in mounted} == {lab_weak["tmpfs"]["mountpoint"]}
    assert all("noexec" not in r["observed"]["options"] for r in mounted)
    (size,) = grouped["tmpfs.size"]
    assert size["observed"]["size_bytes"] == 64 * 1024 * 1024
    keys = grouped["files.tls-key"]
    assert {r["observed"]["mode"] for r in keys} == {"0644"} and len(keys) == 2
    (ht,) = grouped["files.htpasswd"]
    assert [e["user"] for e in ht["observed"]["non_bcrypt"]] == ["legacy"]


def test_discovery_finds_this_namespace_deployment(lab_hardened: Any, lab_weak: Any,
                                                   hardened_report: dict[str, Any],
                                                   weak_report: dict[str, Any]) -> None:
    for lab, report in ((lab_hardened, hardened_report), (lab_weak, weak_report)):
        found = report["discovery"]
        pids = {p["name"]: p["pid"] for p in lab["processes"]}  # the PIDs the lab started
        assert found["registry"]["pid"] == pids["registry"]
        assert found["registry"]["config"] == lab["registry"]["config"]
        assert "docker-registry serve" in found["registry"]["config_source"]
        assert found["nginx"]["pid"] == pids["nginx"]
        assert found["nginx"]["config"] == lab["nginx"]["config"]
        assert found["apache"]["pid"] == pids["apache"]
        assert found["apache"]["config"] == lab["apache"]["config"]
        assert [r["pid"] for r in found["registries"]] == [pids["registry"]]


def test_saved_evidence_reevaluates_to_the_same_results(weak_report: dict[str, Any], tmp_path: Path) -> None:
    saved = Path(weak_report["_out"]) / "evidence.json"
    argv = [str(shutil.which("regaudit")), "evaluate", str(saved), "--format", "json", "--output", str(tmp_path)]
    for check_id in OWNED:
        argv += ["--select", check_id]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    again = json.loads((tmp_path / "regaudit.json").read_text())
    key = lambda r: (r["check"], r["subject"], r["status"], r["message"])  # noqa: E731
    assert sorted(map(key, again["results"])) == sorted(map(key, weak_report["results"]))
