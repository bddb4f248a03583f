"""A registry whose config says loopback but whose environment (REGISTRY_HTTP_ADDR) binds every
interface: registry.bind-loopback must fail from the kernel's sockets and name the process.

The test runs its own docker-registry in a network namespace it creates, and removes both."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CONFIG = """version: 0.1
log:
  formatter: json
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:5000
  debug:
    addr: 127.0.0.1:5001
"""


def _ns_run(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30,
                          check=False)


@pytest.fixture
def overridden_registry(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("docker-registry"):
        pytest.skip("needs root, iproute2 and docker-registry")
    ns = f"rgx-env-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    proc = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        config = tmp_path / "config.yml"
        config.write_text(CONFIG.format(root=tmp_path / "storage"))
        env = {**os.environ, "REGISTRY_HTTP_ADDR": "0.0.0.0:5000"}
        log = open(tmp_path / "registry.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "docker-registry", "serve", str(config)], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while _ns_run(ns, "nc", "-z", "-w", "1", "127.0.0.1", "5000").returncode != 0:
            assert time.monotonic() < deadline, (tmp_path / "registry.log").read_text()
            time.sleep(0.1)
        yield {"ns": ns, "pid": proc.pid, "config": str(config), "out": tmp_path / "report"}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def test_environment_override_binding_every_interface_fails(overridden_registry: dict[str, Any]) -> None:
    out = overridden_registry["out"]
    argv = ["ip", "netns", "exec", overridden_registry["ns"], str(shutil.which("regaudit")), "audit", "--inside",
            "--select", "registry.bind-loopback", "--select", "registry.debug-loopback", "--no-progress",
            "--format", "json", "--output", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "regaudit.json").read_text())
    results = {r["check"]: r for r in report["results"]}
    bind = results["registry.bind-loopback"]
    assert bind["status"] == "fail"
    assert bind["observed"]["addr_source"] == "REGISTRY_HTTP_ADDR in the registry's environment"
    assert bind["observed"]["process"]["pid"] == overridden_registry["pid"]
    assert [s["endpoint"] for s in bind["observed"]["non_loopback"]] == ["[::]:5000"]
    assert results["registry.debug-loopback"]["status"] == "pass"
    assert report["discovery"]["registry"]["config"] == overridden_registry["config"]
