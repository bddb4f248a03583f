"""The lab's `firewall` variant runs two registries on routable addresses (10.0.0.10:5000 and
[fd00::10]:5000): registry.bind-loopback fails for each, naming its own process and socket."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_each_routable_registry_fails_with_its_socket(lab_firewall: Any, tmp_path: Path) -> None:
    argv = ["ip", "netns", "exec", lab_firewall.ns("registry"), str(shutil.which("regaudit")), "audit", "--inside",
            "--select", "registry.bind-loopback", "--no-progress", "--format", "json", "--output", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "regaudit.json").read_text())["results"]
    by_config = {r["subject"]: r for r in results}
    pids = {p["match"]: p["pid"] for p in lab_firewall["processes"] if p["name"].startswith("registry")}
    assert set(by_config) == set(lab_firewall["registry"]["configs"]) == set(pids)
    expected = dict(zip(lab_firewall["registry"]["configs"], lab_firewall["registry"]["listen"], strict=True))
    for config, result in by_config.items():
        assert result["status"] == "fail"
        assert result["observed"]["process"]["pid"] == pids[config]
        assert [s["endpoint"] for s in result["observed"]["non_loopback"]] == [expected[config]]
