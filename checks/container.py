"""container.* checks: how the registry and proxy containers run (privileges, capabilities, config
mount, read-only root filesystem, restart policy), read through the Docker Engine API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, skipped
from auditor.judge.shapes import HostDiscovery, HostDiscoveryContainer
from auditor.model import Severity, Vantage

DISCOVERY = "host.discovery"
RESTART_POLICIES = ("always", "unless-stopped", "on-failure")


def container_problems(container: HostDiscoveryContainer, params: Params) -> list[str]:
    """What is wrong with one container's runtime settings (empty: nothing)."""
    problems = []
    name = str(container.get("name"))
    if container.get("privileged"):
        problems.append("runs --privileged (every capability, every device)")
    if container.get("cap_add"):
        problems.append("adds capabilities " + ", ".join(container.get("cap_add") or []))
    mount = container.get("config_mount")
    if mount and mount.get("rw"):
        problems.append(f"mounts its config {container.get('config_in_container')} read-write "
                        f"(from {mount.get('source')})")
    exempt = {str(x) for x in params.get("read_only_exempt") or []}
    image = str(container.get("image") or "")
    if not container.get("read_only_rootfs") and name not in exempt and image not in exempt:
        problems.append("its root filesystem is writable (no --read-only)")
    if str(container.get("restart_policy") or "no") not in RESTART_POLICIES:
        problems.append(f"restart policy {container.get('restart_policy') or 'no'}: it stays down after a "
                        "crash or reboot")
    return problems


def _observed(container: HostDiscoveryContainer) -> dict[str, Any]:
    keys = ("name", "image", "role", "privileged", "cap_add", "cap_drop", "read_only_rootfs", "restart_policy",
            "config_in_container", "config_mount", "tmpfs", "security_opt", "listening")
    return {k: container.get(k) for k in keys}


@check(
    id="container.runtime",
    title="Registry and proxy containers run unprivileged, read-only and with a restart policy",
    severity=Severity.HIGH,
    area="container",
    vantage=Vantage.INSIDE,
    needs=(DISCOVERY,),
    guide="beyond the guide (containerised deployments)",
    rationale="A privileged container or one with added capabilities is root on the host for anyone who "
    "breaks into the registry or proxy; a config mounted read-write lets that intruder rewrite it for the "
    "next start; a writable root filesystem keeps what an intruder drops there; without a restart policy "
    "the registry stays down after a crash or a reboot.",
    passes_when="every registry and nginx container the Docker Engine runs (found through DOCKER_HOST or the "
    "standard socket) is not privileged, adds no capabilities, mounts its config read-only, runs with a "
    "read-only root filesystem (unless its name or image is in read_only_exempt) and has the restart policy "
    "always, unless-stopped or on-failure",
    remediation="Re-create the container with `docker run --read-only --cap-drop ALL --restart unless-stopped "
    "-v <config>:<path>:ro ...` (no --privileged, no --cap-add; --tmpfs for paths it writes), keeping its "
    "volumes: `regaudit remediate --plan` shows the changed `docker run` line, `--apply --recreate-containers` "
    "re-creates it.",
    generator="container-run",
    references=("CIS Docker Benchmark 5.4 (privileged), 5.3 (capabilities), 5.12 (read-only root), "
                "5.5/5.14 (restart policy)", "NIST SP 800-190 4.4"),
    params={"read_only_exempt": []},
)
def runtime(ev: Evidence, params: Params) -> Iterator[Outcome]:
    discovered = ev.typed(DISCOVERY, HostDiscovery)
    containers = [c for c in discovered.get("container_runtime") or [] if c.get("role")]
    if not containers:
        engine = discovered.get("docker") or {}
        where = engine.get("socket") or "the Docker Engine API"
        reason = f"; {engine['reason']}" if engine.get("reason") else ""
        yield skipped("-", f"no registry or proxy container runs (Docker Engine API at {where}: "
                      f"{engine.get('state', 'not asked')}{reason})")
        return
    expected = {"privileged": False, "cap_add": [], "config_mount": "read-only", "read_only_rootfs": True,
                "restart_policy": list(RESTART_POLICIES)}
    for container in containers:
        subject = f"container {container.get('name')} ({container.get('role')})"
        problems = container_problems(container, params)
        if problems:
            yield failed(subject, "; ".join(problems), observed=_observed(container), expected=expected)
        else:
            yield passed(subject, f"unprivileged, no added capabilities, read-only root and config, restart "
                         f"{container.get('restart_policy')}", observed=_observed(container), expected=expected)
