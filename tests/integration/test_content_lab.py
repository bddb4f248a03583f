"""The content checks on the real lab: regaudit run as a CI job would run it (from the ci namespace,
through the TLS proxy with the lab's credentials), and from the registry host's storage.

hardened passes all six content checks on every tag; weak fails exactly the seeded tags named in
content.json (each as repo:tag with its digest) and nothing else; the API and the storage ways
give the same verdicts; the token variant is walked with the Bearer flow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
CHECKS = ("signatures.present", "signatures.valid", "scans.present", "scans.fresh", "scans.digest-match",
          "scans.severity")


def _run(cmd: list[str], env: dict[str, str] | None, out: Path) -> dict[str, Any]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    report = out / "regaudit.json"
    assert report.exists(), f"no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    data: dict[str, Any] = json.loads(report.read_text())
    data["_exit"] = proc.returncode
    data["_stderr"] = proc.stderr
    return data


def audit_api(lab: Any, out: Path, user: str | None = None, password_file: Path | None = None) -> dict[str, Any]:
    """`ip netns exec <ci> regaudit audit https://registry.regaudit.test ...`, credentials in env."""
    raw = lab.raw
    env = dict(os.environ)
    env["REGAUDIT_USERNAME"] = user or lab.username
    env["REGAUDIT_PASSWORD"] = Path(password_file or lab.password_file).read_text().strip()
    cmd = ["ip", "netns", "exec", lab.namespaces["ci"], "regaudit", "audit", lab.url,
           "--ca-bundle", str(lab.ca), "--cosign-key", raw["cosign"]["public_key"],
           "--scan-dir", raw["scan_dir"], "--select", "signatures,scans", "--no-progress",
           "--format", "json", "--output", str(out), "--evidence-out", str(out / "evidence.json")]
    return _run(cmd, env, out)


def audit_storage(lab: Any, out: Path) -> dict[str, Any]:
    """On the registry host, no URL: content straight from the filesystem storage."""
    raw = lab.raw
    cmd = ["ip", "netns", "exec", lab.namespaces["registry"], "regaudit", "audit", "--inside",
           "--registry-config", raw["registry"]["config"], "--cosign-key", raw["cosign"]["public_key"],
           "--scan-dir", raw["scan_dir"], "--select", "signatures,scans", "--no-progress",
           "--format", "json", "--output", str(out), "--evidence-out", str(out / "evidence.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}
    return _run(cmd, env, out)


def content_json(lab: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((lab.base_dir / "content.json").read_text())
    return data


def lab_tags(content: dict[str, Any]) -> dict[str, str]:
    return {f"{repo}:{tag}": rec["digest"] for repo, r in content["repositories"].items()
            for tag, rec in r["tags"].items()}


def verdicts(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["check"], r["subject"]): r["status"] for r in report["results"] if r["check"] in CHECKS}


@pytest.fixture(scope="module")
def hardened_reports(lab_hardened, tmp_path_factory) -> tuple[dict, dict]:
    return (audit_api(lab_hardened, tmp_path_factory.mktemp("h-api")),
            audit_storage(lab_hardened, tmp_path_factory.mktemp("h-disk")))


@pytest.fixture(scope="module")
def weak_reports(lab_weak, tmp_path_factory) -> tuple[dict, dict]:
    return (audit_api(lab_weak, tmp_path_factory.mktemp("w-api")),
            audit_storage(lab_weak, tmp_path_factory.mktemp("w-disk")))


def test_hardened_passes_all_six_on_every_tag(lab_hardened, hardened_reports):
    api, _ = hardened_reports
    tags = lab_tags(content_json(lab_hardened))
    got = verdicts(api)
    assert {c for c, _ in got} == set(CHECKS)
    for check_id in CHECKS:
        for subject in tags:
            assert got.get((check_id, subject)) == "pass", (check_id, subject, got.get((check_id, subject)))
    assert all(s == "pass" for s in got.values()), {k: v for k, v in got.items() if v != "pass"}
    assert api["_exit"] == 0, api["_stderr"][-2000:]


def test_weak_fails_exactly_the_seeded_tags_with_their_digests(lab_weak, weak_reports):
    api, _ = weak_reports
    content = content_json(lab_weak)
    seeded = {(d["check"], d["subject"]): d["digest"] for d in content["defects"]}
    assert len(seeded) == 7
    failures = {(r["check"], r["subject"]): r for r in api["results"] if r["status"] == "fail"}
    assert set(failures) == set(seeded)
    for key, digest in seeded.items():
        result = failures[key]
        assert result["observed"]["digest"] == digest
        assert digest in result["message"]
    assert not [r for r in api["results"] if r["status"] == "error"]
    assert api["_exit"] == 1


def test_weak_failure_reasons(weak_reports):
    api, _ = weak_reports
    fails = {r["subject"]: r["message"] for r in api["results"] if r["status"] == "fail"}
    assert "unsigned" in fails["myapp/backend:v1.2.0-unsigned"]
    assert "another image" in fails["myapp/backend:v1.2.1-replayed"]
    assert "untrusted key" in fails["myapp/frontend:v2.2.0-untrusted"]
    assert "re-pushed" in fails["prometheus:v2.54.0-repushed"]
    assert "CRITICAL" in fails["myapp/backend:v0.9.0-critical"]


@pytest.mark.parametrize("variant", ["hardened", "weak"])
def test_api_and_storage_give_the_same_verdicts(variant, hardened_reports, weak_reports):
    api, disk = hardened_reports if variant == "hardened" else weak_reports
    assert verdicts(api) == verdicts(disk)
    assert len(verdicts(api)) >= 6 * 11
    # The two audits run one after the other: a scan's age ("0.7h old") may tick between them.
    age = re.compile(r"\d+(?:\.\d+)?h old")
    api_msgs = {(r["check"], r["subject"]): age.sub("Nh old", r["message"]) for r in api["results"]}
    disk_msgs = {(r["check"], r["subject"]): age.sub("Nh old", r["message"]) for r in disk["results"]}
    assert api_msgs == disk_msgs


def test_walk_budget_and_largest_layer(lab_hardened, hardened_reports, tmp_path):
    api, disk = hardened_reports
    content = content_json(lab_hardened)
    ev_api = _evidence(api)
    ev_disk = _evidence(disk)
    value = ev_api["probes"]["registry.content"]["value"]
    stats = value["stats"]["requests"]
    single = sum(1 for r in content["repositories"].values() for t in r["tags"].values() if not t["children"])
    # per-tag requests: manifest + signature + payload for legacy tags; bundles: index + manifest + blob
    assert stats["manifest"] == len(lab_tags(content))
    assert stats["signature"] + stats.get("referrers-index", 0) <= single + 1
    assert value["largest_layer"]["size"] == content["largest_layer"]["size"]
    assert value["largest_layer"]["repo"] == content["largest_layer"]["repo"]
    assert ev_disk["probes"]["registry.content"]["value"]["largest_layer"] == value["largest_layer"]
    # Apache offers no h2: the whole walk went over HTTP/1.1 keep-alive connections of the h11 pool.
    transport = value["stats"]["transport"]
    assert transport["http2_origins"] == []
    assert 1 <= transport["http1_connections_opened"] <= 32 < sum(stats.values())


def _evidence(report: dict[str, Any]) -> dict[str, Any]:
    paths = [line.split(": ", 1)[1] for line in report["_stderr"].splitlines() if line.startswith("report written")]
    out = Path(paths[0]).parent
    data: dict[str, Any] = json.loads((out / "evidence.json").read_text())
    return data


def test_token_variant_walks_with_bearer_tokens(lab_token, tmp_path):
    report = audit_api(lab_token, tmp_path)
    got = verdicts(report)
    assert got and all(s == "pass" for s in got.values()), {k: v for k, v in got.items() if v != "pass"}
    value = _evidence(report)["probes"]["registry.content"]["value"]
    assert value["auth_scheme"] == "bearer"
    assert value["stats"]["token_requests"] >= 2
