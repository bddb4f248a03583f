"""`regaudit remediate` on a containerised deployment: plan, apply --recreate-containers, re-audit, rollback.

apply mutates the deployment: these tests use the session's `container-weak` lab (no test of another
helper uses it) and every apply is rolled back; the rollback must restore the filter ruleset and every
file byte for byte, and the original containers (same settings, same volume, the content still there).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab import containers
from lab.paths import Paths

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "lab-profile.yaml"


def _defect_checks() -> set[str]:
    doc = yaml.safe_load((REPO / "tests" / "lab" / "defects" / "container-weak.yaml").read_text())
    return set().union(*(set(d["checks"]) for d in doc["defects"]))


@pytest.fixture(scope="module")
def remedy(lab_container_weak: Any) -> Iterator[Any]:
    """The session's container-weak lab (one dockerd per variant per session). Every test leaves it
    exactly as it found it: each apply is rolled back and the test checks it byte for byte."""
    before = snapshot(lab_container_weak)
    yield lab_container_weak
    assert snapshot(lab_container_weak) == before


def regaudit(info: Any, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    raw = info.raw
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}, "REGAUDIT_STATE_DIR": str(state)}
    target = [raw["url"], "--ca-bundle", raw["tls"]["ca"], "--scan-dir", raw["scan_dir"], "--cosign-key",
              raw["cosign"]["public_key"], "--username", "auditor", "--password-file", raw["auth"]["password_file"],
              "--profile", str(PROFILE)]
    argv = ["ip", "netns", "exec", info.ns("registry"), "env", f"DOCKER_HOST={raw['docker']['host']}", "regaudit",
            *args]
    if args[0] in ("audit", "remediate") and not ({"--rollback", "--confirm"} & set(args)):
        argv += target
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def docker_json(info: Any, *args: str) -> Any:
    out = subprocess.run([containers.DOCKER, "-H", info["docker"]["host"], *args], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return json.loads(out)


def snapshot(info: Any) -> dict[str, Any]:
    """Files (bytes, mode, owner), the filter ruleset, and how each container runs."""
    out: dict[str, Any] = {}
    paths = Paths.for_variant(info.raw["variant"])
    for path in (containers.registry_config_path(paths), containers.nginx_config_path(paths),
                 containers.compose_path(paths), Path(info.raw["apache"]["config"])):
        st = path.stat()
        out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), oct(st.st_mode & 0o7777), st.st_uid)
    rules = subprocess.run(["ip", "netns", "exec", info.ns("registry"), "iptables-save", "-t", "filter"],
                           capture_output=True, text=True, check=True).stdout
    out["iptables"] = [re.sub(r" \[\d+:\d+\]$", "", ln) for ln in rules.splitlines() if not ln.startswith("#")]
    for name in ("registry", "nginx"):
        data = docker_json(info, "inspect", name)[0]
        hc = data["HostConfig"]
        out[name] = {"image": data["Config"]["Image"], "running": data["State"]["Running"],
                     "ports": data["NetworkSettings"]["Ports"], "binds": hc.get("Binds"), "caps": hc.get("CapAdd"),
                     "read_only": hc["ReadonlyRootfs"], "restart": hc["RestartPolicy"]["Name"],
                     "tmpfs": hc.get("Tmpfs"), "mounts": sorted((m["Type"], m.get("Name"), m["Destination"], m["RW"])
                                                                for m in data["Mounts"])}
    return out


def _failing(report: Path) -> set[str]:
    results = json.loads(report.read_text())["results"]
    return {r["check"] for r in results if r["status"] in ("fail", "error")}


def test_plan_shows_docker_run_lines_and_docker_user_rules(remedy: Any, tmp_path: Path) -> None:
    before = snapshot(remedy)
    cp = regaudit(remedy, tmp_path / "state", "remediate", "--plan", str(tmp_path / "plan"))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = cp.stdout
    assert "-docker run -d --name registry" in out and "+docker run -d --name registry" in out
    after_line = next(ln for ln in out.splitlines() if ln.startswith("+docker run -d --name registry"))
    assert "-p 127.0.0.1:5000:5000" in after_line and "--cap-add" not in after_line and "--read-only" in after_line
    assert "config.yml:/etc/docker/registry/config.yml:ro" in after_line and "registry-data:/var/lib/registry" \
        in after_line
    nginx_line = next(ln for ln in out.splitlines() if ln.startswith("+docker run -d --name nginx"))
    assert "--tmpfs /var/lib/nginx:rw,noexec,nosuid" in nginx_line
    assert "-I DOCKER-USER 4 -p tcp -m tcp --dport 5000 -m conntrack --ctstate DNAT -j DROP" in out
    assert (tmp_path / "plan" / "containers" / "registry.run").is_file()
    assert (tmp_path / "plan" / "firewall" / "docker-user.rules").is_file()
    assert "http.addr" not in out, "a containerised registry keeps its http.addr"
    # the containers came from docker-compose: the plan edits the compose file the user keeps
    compose = str(containers.compose_path(Paths.for_variant(remedy.raw["variant"])))
    assert f"--- container-run: {compose}" in out
    assert "+    - 127.0.0.1:5000:5000" in out and "-    cap_add:" in out and "+    read_only: true" in out
    assert (tmp_path / "plan" / "files" / compose.lstrip("/")).is_file()
    assert snapshot(remedy) == before  # --plan changes nothing


def test_apply_without_the_flag_leaves_containers_alone(remedy: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = snapshot(remedy)
    cp = regaudit(remedy, state, "remediate", "--apply", "--firewall-timeout", "300")
    try:
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "containers not re-created (pass --recreate-containers)" in cp.stdout
        assert "re-audit passed: files.configs, firewall.registry-port" in cp.stdout
        now = snapshot(remedy)
        assert now["registry"] == before["registry"] and now["nginx"] == before["nginx"]
        compose = str(containers.compose_path(Paths.for_variant(remedy.raw["variant"])))
        assert now[compose] == before[compose], "the compose file follows the containers: unchanged"
    finally:
        back = regaudit(remedy, state, "remediate", "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert snapshot(remedy) == before


def test_apply_recreate_then_reaudit_passes_then_rollback_restores_byte_for_byte(remedy: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = snapshot(remedy)
    cp = regaudit(remedy, state, "remediate", "--apply", "--recreate-containers", "--firewall-timeout", "300")
    try:
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "re-audit passed" in cp.stdout
        assert "validated: compose" in cp.stdout
        assert regaudit(remedy, state, "remediate", "--confirm").returncode == 0
        # the edited compose file describes what runs: docker-compose would not change the registry
        compose = containers.compose_path(Paths.for_variant(remedy.raw["variant"]))
        subprocess.run([containers.COMPOSE, "-f", str(compose), "config", "-q"], check=True)
        service = yaml.safe_load(compose.read_text())["services"]["registry"]
        assert service["ports"] == ["127.0.0.1:5000:5000"] and "cap_add" not in service
        assert service["read_only"] is True and service["restart"] == "unless-stopped"
        assert any(str(v).endswith(":/etc/docker/registry/config.yml:ro") for v in service["volumes"])
        report = tmp_path / "after"
        audit = regaudit(remedy, state, "audit", "--inside", "--no-progress", "--no-history", "--format", "json",
                         "--output", str(report))
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert _failing(report / "regaudit.json") == set()
        # every seeded defect was remediable, and the content is still there (the volume was kept)
        assert _defect_checks() <= {r["check"] for r in json.loads((report / "regaudit.json").read_text())["results"]
                                    if r["status"] == "pass"}
        now = snapshot(remedy)
        assert now["registry"]["ports"] == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5000"}]}
        assert now["registry"]["read_only"] and now["registry"]["caps"] in (None, [])
        config = containers.CONFIG_IN_CONTAINER
        assert now["registry"]["mounts"] == sorted((t, n, d, False if d == config else rw)
                                                   for t, n, d, rw in before["registry"]["mounts"])
    finally:
        back = regaudit(remedy, state, "remediate", "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert snapshot(remedy) == before
    names = sorted(c["Name"].lstrip("/") for c in docker_json(remedy, "inspect", *[
        line for line in subprocess.run([containers.DOCKER, "-H", remedy["docker"]["host"], "ps", "-aq"],
                                        capture_output=True, text=True, check=True).stdout.split()]))
    assert names == ["nginx", "registry"], "the re-created containers are gone, the originals back under their names"
