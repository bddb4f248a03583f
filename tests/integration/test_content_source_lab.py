"""Storage first on the registry host: the inside audit with a URL reads content from storage,
and the verdicts are the same as through the registry API.

On the hardened and weak labs, the README's inside command (`regaudit audit URL --inside ...`) runs
in the registry host's namespace three times: `--content-source auto` (the default), `api` and
`storage`. Auto must pick storage (readable there), api must walk the API, and every result
(check, subject, status) must be the same in the three runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "lab-profile.yaml"
CONTENT_CHECKS = ("signatures.", "scans.", "tmpfs.size")


def _inside(info: Any, out: Path, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    raw = info.raw
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")},
           "REGAUDIT_STATE_DIR": str(out / "state")}
    argv = ["ip", "netns", "exec", raw["namespaces"]["registry"], "regaudit", "audit", raw["url"], "--inside",
            "--fstab", raw["fstab"], "--ca-bundle", raw["tls"]["ca"], "--cosign-key", raw["cosign"]["public_key"],
            "--scan-dir", raw["scan_dir"], "--username", raw["auth"]["username"],
            "--password-file", raw["auth"]["password_file"], "--profile", str(PROFILE), "--no-progress",
            "--format", "json", "--content-source", source, "--evidence-out", str(out / f"{source}.evidence.json"),
            "--output", str(out / source)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads((out / source / "regaudit.json").read_text())
    evidence = json.loads((out / f"{source}.evidence.json").read_text())
    return report, evidence


def _content_facts(evidence: dict[str, Any]) -> dict[str, Any]:
    records = evidence.get("records") or evidence.get("probes") or {}
    record = records["registry.content"]
    return record.get("value") or {}


def _verdicts(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["check"], r["subject"]): r["status"] for r in report["results"]}


@pytest.mark.parametrize("variant", ["lab_hardened", "lab_weak"])
def test_storage_and_api_give_the_same_verdicts(variant: str, request: pytest.FixtureRequest,
                                                tmp_path: Path) -> None:
    info = request.getfixturevalue(variant)
    runs = {source: _inside(info, tmp_path, source) for source in ("auto", "api", "storage")}
    assert _content_facts(runs["auto"][1])["source"] == "storage"
    assert "readable" in _content_facts(runs["auto"][1])["source_choice"]
    assert _content_facts(runs["api"][1])["source"] == "api"
    assert _content_facts(runs["storage"][1])["source"] == "storage"
    verdicts = {source: _verdicts(report) for source, (report, _evidence) in runs.items()}
    content = {k: v for k, v in verdicts["api"].items() if k[0].startswith(CONTENT_CHECKS)}
    assert content, "no content check was judged"
    assert any(check == "tmpfs.size" for check, _subject in content)
    statuses = set(content.values())
    assert "error" not in statuses and "pass" in statuses, content
    assert ("fail" in statuses) == (variant == "lab_weak"), content
    assert verdicts["auto"] == verdicts["api"] == verdicts["storage"]
