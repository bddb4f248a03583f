"""Reloading and restarting the proxy and the registry after a config change.

systemd when it runs and the process belongs to a unit; otherwise signals to the discovered
process: nginx HUP (the master re-reads its config), Apache USR1 (graceful). The registry cannot
reload (docs/guide-notes.md#registry-config-reload): it is restarted with its original command line,
environment and working directory, in its network and mount namespaces, and must listen again before this returns.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from auditor import bounded
from auditor.subproc import run

from .procs import ProcessSpec, StepError, children, find_pids, listening, must

FAULT = "REGAUDIT_REMEDIATE_FAULT"  # fault injection for the tests: e.g. "fail-reload:registry"


def systemd_unit(pid: int | None) -> str | None:
    """The systemd service unit running `pid`, when systemd is the init system."""
    if not pid or not Path("/run/systemd/system").is_dir():
        return None
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    match = re.search(r"/([^/]+\.service)(/|$)", cgroup, re.M)
    return match.group(1) if match else None


def reload_description(service: str, info: dict[str, Any]) -> str:
    pid = info.get("pid")
    unit = systemd_unit(pid)
    if unit:
        verb = "restart" if service == "registry" else "reload"
        return f"systemctl {verb} {unit}"
    if service == "nginx":
        return f"kill -HUP {pid} (nginx master)"
    if service == "apache":
        return f"kill -USR1 {pid} (Apache graceful restart)"
    container = info.get("container") or {}
    if container.get("id"):
        return f"docker restart {container.get('name')} (Engine API POST /containers/<id>/restart)"
    return f"restart the registry (pid {pid}): SIGTERM, then its command line again in its namespaces"


def restart_container(info: dict[str, Any]) -> None:
    """Restart a containerised registry through the Engine API discovery reached (the config is a
    bind mount: the restarted container reads the new file)."""
    from .containers import Engine

    container = info.get("container") or {}
    endpoint = str(info.get("engine") or "")
    if not endpoint or not container.get("id"):
        raise StepError("the registry container's Engine API endpoint is unknown: restart it by hand")
    engine = Engine(endpoint)
    try:
        engine.call("POST", f"/containers/{container['id']}/restart", params={"t": 10})
    finally:
        engine.close()


def _wait(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _reload(info: dict[str, Any], sig: signal.Signals, reloaded: Callable[[int, set[int]], bool],
            failure: str) -> dict[str, Any]:
    """Reload the master process `info["pid"]`: through its systemd unit when it has one, else by
    `sig`, then wait until `reloaded(pid, children before)` (StepError with `failure` after 15 s)."""
    pid = int(info["pid"])
    unit = systemd_unit(pid)
    if unit:
        must(["systemctl", "reload", unit], f"systemctl reload {unit}")
        return {"pid": pid}
    before = children(pid)
    os.kill(pid, sig)
    if not _wait(lambda: _alive(pid) and reloaded(pid, before), 15):
        raise StepError(failure.format(pid=pid))
    return {"pid": pid}


def reload_nginx(info: dict[str, Any]) -> dict[str, Any]:
    """SIGHUP, new workers up, then (up to 5 s, not an error) the old workers gone: until then an old
    worker may still take a new connection with the old TLS and auth settings."""
    before = children(int(info["pid"]))
    out = _reload(info, signal.SIGHUP, lambda pid, before: bool(children(pid)) and not (children(pid) <= before),
                  "nginx (pid {pid}) did not start new workers after SIGHUP: the reload failed "
                  "(see nginx's error log)")
    _wait(lambda: not (children(int(info["pid"])) & before), 5)
    return out


def reload_apache(info: dict[str, Any]) -> dict[str, Any]:
    return _reload(info, signal.SIGUSR1, lambda pid, before: bool(children(pid) - before),
                   "Apache (pid {pid}) did not start new children after a graceful restart (USR1)")


def _registry_port(config_path: str | None) -> int:
    try:
        config = bounded.load_yaml_file(str(config_path), what="registry config") or {}
        addr = str((config.get("http") or {}).get("addr") or ":5000")
        return int(addr.rsplit(":", 1)[1])
    except (yaml.YAMLError, ValueError, IndexError, AttributeError):  # InputError is a ValueError
        return 5000


def start_registry(spec: ProcessSpec, anchor_pid: int, config_path: str | None) -> int:
    """Start the registry from `spec` in the namespaces of `anchor_pid`; return its pid once it listens."""
    argv = [spec.exe, *spec.argv[1:]]
    if os.environ.get(FAULT) == "fail-reload:registry":
        argv.append("--regaudit-fault-injection")  # an unknown flag: the registry really exits at start
    net = os.open(f"/proc/{anchor_pid}/ns/net", os.O_RDONLY)
    mnt = os.open(f"/proc/{anchor_pid}/ns/mnt", os.O_RDONLY)
    out = open(spec.stdout, "ab") if spec.stdout else subprocess.DEVNULL  # noqa: SIM115
    err = open(spec.stderr, "ab") if spec.stderr else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            ["nsenter", f"--net=/proc/self/fd/{net}", f"--mount=/proc/self/fd/{mnt}", f"--wd={spec.cwd}", "--", *argv],
            env=spec.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(net, mnt),
            start_new_session=True)
    finally:
        os.close(net)
        os.close(mnt)
        for handle in (out, err):
            if not isinstance(handle, int):
                handle.close()
    port = _registry_port(config_path)
    if not _wait(lambda: proc.poll() is not None or listening(proc.pid, port), 20) or proc.poll() is not None:
        raise StepError(f"the registry exited at start (exit {proc.returncode}): see its log "
                        f"{spec.stderr or spec.stdout or ''}".strip())
    return proc.pid


def stop(pid: int, seconds: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _wait(lambda: not _alive(pid), seconds):
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _alive(pid), 5)


def restart_registry(info: dict[str, Any], spec: ProcessSpec, anchor_pid: int) -> dict[str, Any]:
    """Restart the registry (docs/guide-notes.md#registry-config-reload: no reload); returns {"pid": new pid}."""
    pid = int(info.get("pid") or 0)
    unit = systemd_unit(pid)
    if unit:
        must(["systemctl", "restart", unit], f"systemctl restart {unit}")
        return {"pid": pid, "unit": unit}
    if pid and _alive(pid):
        stop(pid)
    return {"pid": start_registry(spec, anchor_pid, info.get("config"))}


def anchor_for(journal_services: dict[str, Any], netns: int | None) -> int | None:
    """A live pid in the registry's network namespace (the registry, else the proxies, else us)."""
    from auditor.subproc import ns_inode

    candidates = [journal_services.get(name, {}).get("pid") for name in ("registry", "nginx", "apache")]
    candidates += find_pids(str(journal_services.get("registry", {}).get("config") or "\0"))
    for pid in candidates:
        if pid and _alive(int(pid)) and (netns is None or ns_inode(int(pid), "net") == netns):
            return int(pid)
    if netns is not None and ns_inode("self", "net") == netns:
        return os.getpid()
    return None


def running(pid: int | None) -> bool:
    return bool(pid) and _alive(int(pid))  # type: ignore[arg-type]


__all__ = ["StepError", "reload_apache", "reload_nginx", "restart_registry", "run", "running", "stop"]
