"""Issue 2's acceptance, as a new user runs it: an inside audit of a config file on a host where no
registry runs (here: a fresh, empty network namespace made with `unshare --net`).

Only the config checks judge; what needs a running registry or its storage says so (warn or skip),
never a pass and never an error that would fail the pipeline on a check the user cannot satisfy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import FIXTURES

UNSHARE = shutil.which("unshare")
pytestmark = pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0, reason="needs root and unshare(1)")


def audit_in_empty_namespace(tmp_path: Path, config: str, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    env = {**os.environ, "REGAUDIT_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [str(UNSHARE), "--net", "regaudit", "audit", "--inside", "--registry-config",
         str(FIXTURES / "registry" / config), "--no-progress", "--format", "json", "--output", str(out), *extra],
        capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads((out / "regaudit.json").read_text())


def test_guide_config_passes_and_nothing_else_trips_the_gate(tmp_path: Path) -> None:
    code, report = audit_in_empty_namespace(tmp_path, "guide-config.yml", "--fail-on", "low")
    statuses = {r["check"]: r["status"] for r in report["results"]}
    assert code == 0, [r for r in report["results"] if r["status"] in ("fail", "error")]
    assert statuses["registry.upload-purging"] == "pass"
    assert statuses["registry.token-config"] == "skip"
    assert statuses["registry.bind-loopback"] == "warn"  # the sockets of a registry that is not running
    assert not [r for r in report["results"] if r["status"] in ("fail", "error")]


def test_purging_disabled_fails_exactly_upload_purging(tmp_path: Path) -> None:
    code, report = audit_in_empty_namespace(tmp_path, "purging-disabled.yml", "--fail-on", "medium")
    failing = [r["check"] for r in report["results"] if r["status"] in ("fail", "error")]
    assert failing == ["registry.upload-purging"] and code == 1
    code, _ = audit_in_empty_namespace(tmp_path, "purging-disabled.yml", "--fail-on", "critical")
    assert code == 0
