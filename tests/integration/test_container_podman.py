"""Discovery through podman's Docker-compatible API (Debian's podman 4.3, `podman system service`).

A registry container run by podman in its own network namespace (`rgd-pod-<n>`), its config bind-mounted
read-only; the inside audit reaches podman's socket through DOCKER_HOST and judges the config the
container uses and how the container runs. Podman cannot raise the open-files limit here (no
CAP_SYS_RESOURCE), so the container runs with explicit --ulimit values.
"""

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

import lab
import pytest
from lab import containers, netns

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PODMAN = "/usr/bin/podman"
NS = f"rgd-pod-{os.getpid() % 10000}"
CONFIG = """\
version: 0.1
log: {formatter: json}
storage:
  filesystem: {rootdirectory: /var/lib/registry}
http:
  addr: ":5000"
"""


def _podman(base: Path, *args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[Any]:
    argv = ["nsenter", f"--net=/run/netns/{NS}", PODMAN, "--root", str(base / "root"), "--runroot",
            str(base / "run"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
            "file", *args]
    return subprocess.run(argv, capture_output=True, check=check, timeout=120, **kw)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = lab.available() or (None if os.path.exists(PODMAN) else f"{PODMAN} is not installed (setup.sh)")
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("podman")
    socket = base / "podman.sock"
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
    service = None
    try:
        service = subprocess.Popen(["nsenter", f"--net=/run/netns/{NS}", PODMAN, "--root", str(base / "root"),
                                    "--runroot", str(base / "run"), "--storage-driver", "vfs", "--cgroup-manager",
                                    "cgroupfs", "--events-backend", "file", "system", "service", "--time=0",
                                    f"unix://{socket}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline = time.monotonic() + 30
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), "podman system service did not create its socket"
        rootfs = base / "rootfs"
        containers.registry_rootfs(rootfs)
        tar = subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], capture_output=True,
                             check=True).stdout
        _podman(base, "import", "--change", 'ENTRYPOINT ["/bin/registry", "serve"]', "--change",
                f'CMD ["{containers.CONFIG_IN_CONTAINER}"]', "-", "localhost/registry:podman", input=tar)
        config = base / "srv" / "config.yml"
        config.parent.mkdir()
        config.write_text(CONFIG)
        _podman(base, "run", "-d", "--name", "preg", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                "-p", "127.0.0.1:5000:5000", "--restart", "always", "--read-only",
                "-v", f"{config}:{containers.CONFIG_IN_CONTAINER}:ro", "localhost/registry:podman")
        yield {"base": base, "socket": socket, "config": config}
    finally:
        _podman(base, "rm", "-f", "-a", check=False)
        if service is not None:
            os.kill(service.pid, signal.SIGTERM)
            service.wait(timeout=30)
        containers.unmount_below(base)
        netns.sh(["ip", "netns", "del", NS], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_discovery_and_judgement_through_podmans_compatible_socket(podman: dict[str, Any], tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REGAUDIT_", "DOCKER_"))},
           "REGAUDIT_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(["ip", "netns", "exec", NS, "env", f"DOCKER_HOST=unix://{podman['socket']}", "regaudit",
                           "audit", "--inside", "--no-progress", "--no-history", "--format", "json", "--select",
                           "container.*,registry.*", "--output", str(tmp_path / "out"), "--evidence-out",
                           str(tmp_path / "evidence.json")], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    evidence = json.loads((tmp_path / "evidence.json").read_text())["probes"]
    discovery = evidence["host.discovery"]["value"]
    assert discovery["docker"]["state"] == "ok" and discovery["docker"]["endpoint_source"] == "DOCKER_HOST"
    assert discovery["registry"]["container"]["name"] == "preg"
    assert evidence["config.registry"]["value"]["path"] == str(podman["config"])
    results = json.loads((tmp_path / "out" / "regaudit.json").read_text())["results"]
    runtime = [r for r in results if r["check"] == "container.runtime"]
    assert [(r["subject"], r["status"]) for r in runtime] == [("container preg (registry)", "pass")]
    loopback = [r for r in results if r["check"] == "registry.bind-loopback"]
    assert loopback and all(r["status"] == "pass" for r in loopback), loopback
