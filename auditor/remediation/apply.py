"""`remediate --apply` and `--rollback`: install a plan safely, prove it, or undo every change.

Order: journal + backups, atomic writes (mode and owner kept), validation, remounts, firewall
(with its watchdog), reloads/restarts, re-audit of the checks the plan means to fix. Any failure
(an exception, a rejected config, a reload that fails, a check still failing) rolls back every
recorded step in reverse and restores the services; the original files come back byte-identical.
A crash leaves the journal `running`: `--rollback` finishes the job and a new apply refuses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from auditor import bounded
from auditor.errors import UsageError
from auditor.model import Result, Status
from auditor.subproc import in_namespaces, ns_inode

from . import containers, netfilter, services
from .fsops import replace_atomically, sha256, write_durably
from .journal import Journal
from .model import Plan
from .procs import ProcessSpec, StepError, must
from .validate import validate

Say = Callable[[str], None]
ReAudit = Callable[[set[str]], Iterable[Result]]
FAULT = services.FAULT
EXIT_ROLLED_BACK = 1  # a step failed; every change was undone
EXIT_ROLLBACK_INCOMPLETE = 4  # a step failed and the rollback could not undo everything: see the journal
CORRUPT = {"nginx": "\nregaudit_fault_injection on;\n", "apache": "\nRegauditFaultInjection On\n",
           "registry": "\n: [unbalanced\n"}


def _fault(kind: str) -> str | None:
    value = os.environ.get(FAULT, "")
    return value.split(":", 1)[1] if value.startswith(kind + ":") else None


def preflight() -> None:
    journal = Journal.load()
    if journal is not None and journal.unfinished:
        raise UsageError(f"an unfinished remediation (journal {journal.path}, status {journal.status}) exists: "
                         "run `regaudit remediate --rollback` first")


def apply(plan: Plan, reaudit: ReAudit, say: Say, firewall_timeout: float = 120.0,
          recreate_containers: bool = False) -> int:
    """Apply `plan`; 0 applied and proven, 1 failed and rolled back. Raises UsageError before acting.
    Containers are re-created only with `recreate_containers` (else their checks are left failing)."""
    preflight()
    if plan.containers and not recreate_containers:
        pending = sorted({c for change in plan.containers for c in change.checks})
        say(f"containers not re-created (pass --recreate-containers): {', '.join(c.name for c in plan.containers)}; "
            f"left failing: {', '.join(pending)}")
        plan.files = [f for f in plan.files if f.generator != containers.NAME]  # compose files follow re-creation
        kept = {c for f in plan.files for c in f.checks} | {c for r in plan.firewall for c in r.checks} | \
            {c for m in plan.mounts for c in m.checks}
        plan.expected -= set(pending) - kept
        plan.containers = []
    if not plan.changes_host:
        say("nothing to do: no change is needed on this host")
        return 0
    if os.geteuid() != 0:
        raise UsageError("--apply changes system files and services: run it as root")
    try:
        journal = Journal.create()
        journal.services = {k: dict(v) for k, v in plan.services.items()}
        reg_pid = journal.services.get("registry", {}).get("pid")
        if journal.services.get("registry", {}).get("container"):
            # a containerised registry: its published ports and their rules live in the host's namespace
            journal.services["registry"]["netns"] = ns_inode("self", "net")
        elif reg_pid:
            journal.services["registry"]["netns"] = ns_inode(reg_pid, "net")
        journal.save()
    except OSError as exc:
        say(f"apply failed before any change: cannot write the journal/backups: {exc}")
        return 1
    say(f"journal {journal.path}; backups in {journal.backup_dir}")
    try:
        _steps(plan, journal, say, firewall_timeout)
        _prove(plan, reaudit, say)
    except (Exception, KeyboardInterrupt) as exc:
        say(f"apply failed: {exc}")
        say("rolling back every change")
        ok = rollback(journal, say)
        return EXIT_ROLLED_BACK if ok else EXIT_ROLLBACK_INCOMPLETE
    journal.status = "applied"
    journal.save()
    if journal.firewall:
        left = max(0, int(float(journal.firewall["deadline"]) - time.time()))
        say(f"firewall changed: run `regaudit remediate --confirm` within {left}s or it reverts by itself")
    count = len(plan.files) + len(plan.mounts) + len(plan.firewall) + len(plan.moves) + len(plan.containers)
    say(f"applied {count} change(s); "
        f"re-audit passed: {', '.join(sorted(plan.expected))}")
    return 0


def _steps(plan: Plan, journal: Journal, say: Say, firewall_timeout: float) -> None:
    backup = Path(journal.backup_dir)
    kill_after = _fault("kill-after-write")
    corrupt = _fault("corrupt")
    targets = [write_target(Path(c.path), _config_root(plan, c.service)) for c in plan.files]  # refuse before acting
    for writes, change in enumerate(plan.files, start=1):
        index = writes - 1
        path = targets[index]
        st = path.stat()
        step: dict[str, Any] = {"kind": "file", "path": str(path), "generator": change.generator,
                                "checks": list(change.checks), "mode": st.st_mode & 0o7777, "uid": st.st_uid,
                                "gid": st.st_gid, "service": change.service}
        if change.content is not None:
            data = path.read_bytes()
            name = f"files/{index:03d}-{path.name}"
            write_durably(backup / name, data)
            step.update(backup=name, sha256_before=sha256(data))
        step = journal.record(step)
        content = change.content
        if content is not None and corrupt and change.validate == corrupt:
            content = content + CORRUPT[corrupt].encode()
        if content is not None:
            replace_atomically(path, content, mode=change.mode, uid=change.uid, gid=change.gid)
        else:
            if change.mode is not None:
                os.chmod(path, change.mode)
            if change.uid is not None or change.gid is not None:
                os.chown(path, -1 if change.uid is None else change.uid, -1 if change.gid is None else change.gid)
        journal.done(step)
        say(f"changed: {change.describe()}")
        if kill_after and writes == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
    validated: set[str] = set()
    for change in plan.files:
        if change.validate and change.content is not None and change.validate not in validated:
            validate(change, plan.services)
            validated.add(change.validate)
            say(f"validated: {change.validate} ({change.path})")
    for index, move in enumerate(plan.moves):
        name = f"moved/{index:03d}-{Path(move.path).name}"
        (backup / name).parent.mkdir(parents=True, exist_ok=True)
        step = journal.record({"kind": "move", "path": move.path, "backup": name})
        shutil.move(move.path, backup / name)
        journal.done(step)
        say(f"moved aside: {move.path}")
    for mount in plan.mounts:
        step = journal.record({"kind": "mount", "mountpoint": mount.mountpoint, "undo": mount.undo,
                               "ns_pid": mount.ns_pid})
        _remount(mount.mountpoint, mount.options, mount.ns_pid)
        journal.done(step)
        say(f"remounted: {mount.describe()}")
    if plan.firewall:
        _firewall(plan, journal, say, firewall_timeout)
    recreated = set()
    for change in plan.containers:
        step = journal.record({"kind": "container", "name": change.name, "role": change.role,
                               "endpoint": change.endpoint, "edits": change.edits})
        new_id = containers.recreate(change, step, journal.save, str(journal.id))
        journal.done(step, new_id=new_id)
        recreated.add(change.role)
        say(f"re-created: container {change.name} ({', '.join(change.why)}); the old one is kept stopped as "
            f"{step['aside']} until rollback or removal")
    for service in plan.services_to_reload():
        if service in recreated:
            continue  # the re-created container started with the new config
        _reload(service, journal, say)


def write_target(path: Path, root: Path | None) -> Path:
    """The file apply changes for `path`: `path` itself, or, when it is a symlink, the link's final
    target, but only when that target lies inside `root` (the service's config directory, else the
    link's own directory), as Debian's sites-enabled links do. A link out of it (into another file
    of the system) or a dangling or looping link is refused before any change (StepError)."""
    if not path.is_symlink():
        return path
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise StepError(f"{path} is a symlink that does not resolve ({exc}): refusing to write through it") from None
    allowed = (root or path.parent).resolve()
    if not target.is_file() or not target.is_relative_to(allowed):
        raise StepError(f"{path} is a symlink to {target}, outside {allowed}: refusing to write through it "
                        "(point the option at the real file, or replace the link)")
    return target


def _config_root(plan: Plan, service: str | None) -> Path | None:
    config = (plan.services.get(service) or {}).get("config") if service else None
    return Path(str(config)).parent if config else None


def _remount(mountpoint: str, options: str, ns_pid: int | None) -> None:
    argv = ["mount", "-o", f"remount,{options}", mountpoint]
    must(in_namespaces(ns_pid, argv, ("mnt",)), f"remount {mountpoint}")
    if ns_pid and ns_inode(ns_pid, "mnt") != ns_inode("self", "mnt") and os.path.ismount(mountpoint):
        must(argv, f"remount {mountpoint} (our mount namespace)")


def _firewall(plan: Plan, journal: Journal, say: Say, timeout: float) -> None:
    backup = Path(journal.backup_dir)
    for change in plan.firewall:
        saved = netfilter.save(change.tool, change.ns_pid)
        name = f"firewall/{change.tool}.saved"
        write_durably(backup / name, saved.encode())
        netfilter.test(change.tool, change.ns_pid, change.restore)
        step = journal.record({"kind": "firewall", "tool": change.tool, "saved": name, "ns_pid": change.ns_pid})
        netfilter.install(change.tool, change.ns_pid, change.restore)
        journal.done(step)
        say(f"firewall: {change.describe()}")
    journal.firewall = {"deadline": time.time() + timeout, "confirmed": False, "reverted": False}
    journal.save()
    pid = plan.firewall[0].ns_pid
    argv = in_namespaces(pid, [sys.executable, "-m", "auditor.remediation.watchdog", str(journal.path)])
    watchdog = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    journal.firewall["watchdog_pid"] = watchdog.pid
    journal.save()
    say(f"firewall watchdog pid {watchdog.pid}: reverts in {int(timeout)}s unless confirmed")


def _reload(service: str, journal: Journal, say: Say) -> None:
    info = journal.services.get(service) or {}
    if not info.get("pid"):
        raise StepError(f"{service} was not discovered running: cannot reload it")
    step = journal.record({"kind": "service", "service": service, "pid": info.get("pid")})
    if service == "nginx":
        services.reload_nginx(info)
    elif service == "apache":
        services.reload_apache(info)
    elif info.get("container"):
        services.restart_container(info)
    else:
        spec = ProcessSpec.read(int(info["pid"]))
        write_durably(Path(journal.backup_dir) / "registry-process.json",
                      (__import__("json").dumps(spec.to_json()) + "\n").encode())
        anchor = int(info["pid"])
        holder = _hold_namespace(anchor)
        try:
            result = services.restart_registry(info, spec, holder)
        finally:
            _release(holder)
        journal.services["registry"]["pid"] = result["pid"]
        journal.save()
    journal.done(step)
    say(f"{'restarted' if service == 'registry' else 'reloaded'}: {service}")


def _hold_namespace(pid: int) -> int:
    """A sleeping helper in `pid`'s namespaces, so they outlive the process being restarted."""
    proc = subprocess.Popen(in_namespaces(pid, ["sleep", "120"], ("net", "mnt")), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 5
    while time.time() < deadline:
        if ns_inode(proc.pid, "net") == ns_inode(pid, "net") and Path(f"/proc/{proc.pid}/comm").read_text().strip() \
                == "sleep":
            break
        time.sleep(0.02)
    return proc.pid


def _release(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _prove(plan: Plan, reaudit: ReAudit, say: Say) -> None:
    if not plan.expected:
        return
    say("re-auditing: " + ", ".join(sorted(plan.expected)))
    results = list(reaudit(set(plan.expected)))
    bad = [r for r in results if r.check_id in plan.expected and r.status in (Status.FAIL, Status.ERROR)]
    if bad:
        shown = "; ".join(f"{r.check_id} {r.status.value} {r.subject}: {r.message}" for r in bad[:6])
        raise StepError(f"re-audit: {len(bad)} result(s) still failing: {shown}")
    judged = {r.check_id for r in results}
    missing = plan.expected - judged
    if missing:
        raise StepError(f"re-audit did not judge: {', '.join(sorted(missing))}")


def rollback(journal: Journal, say: Say) -> bool:
    """Undo every recorded step in reverse and restore the services; True when all went well."""
    errors: list[str] = []
    backup = Path(journal.backup_dir)
    touched: set[str] = set()
    restarted_registry = False
    for step in reversed(journal.steps):
        try:
            kind = step.get("kind")
            if kind == "file":
                path = Path(step["path"])
                if step.get("backup"):
                    data = (backup / step["backup"]).read_bytes()
                    if not path.exists() or path.read_bytes() != data:
                        replace_atomically(path, data, mode=step["mode"], uid=step["uid"], gid=step["gid"])
                    if step.get("service"):
                        touched.add(step["service"])
                st = path.stat()
                if st.st_mode & 0o7777 != step["mode"]:
                    os.chmod(path, step["mode"])
                if (st.st_uid, st.st_gid) != (step["uid"], step["gid"]):
                    os.chown(path, step["uid"], step["gid"])
                say(f"restored: {path}")
            elif kind == "move":
                source = backup / step["backup"]
                if source.exists() and not Path(step["path"]).exists():
                    shutil.move(source, step["path"])
                say(f"moved back: {step['path']}")
            elif kind == "mount":
                _remount(step["mountpoint"], step["undo"], step.get("ns_pid"))
                say(f"remounted back: {step['mountpoint']} ({step['undo']})")
            elif kind == "firewall":
                if not journal.firewall.get("reverted"):
                    saved = (backup / step["saved"]).read_text()
                    netfilter.restore(step["tool"], step.get("ns_pid") if services.running(step.get("ns_pid"))
                                      else _anchor(journal), saved)
                say(f"firewall restored: {step['tool']}")
            elif kind == "container":
                containers.undo(step)
                say(f"container restored: {step['name']} (the re-created one removed, volumes kept)")
            elif kind == "service" and step.get("service") == "registry":
                restarted_registry = True
        except Exception as exc:  # keep undoing the rest; report at the end
            errors.append(f"{step.get('kind')} {step.get('path') or step.get('mountpoint') or ''}: {exc}")
    for service in ("nginx", "apache"):
        if service in touched:
            try:
                info = journal.services.get(service) or {}
                if services.running(info.get("pid")):
                    (services.reload_nginx if service == "nginx" else services.reload_apache)(info)
                    say(f"reloaded with the original config: {service}")
                else:
                    errors.append(f"{service} (pid {info.get('pid')}) is not running")
            except Exception as exc:
                errors.append(f"reload {service}: {exc}")
    if "registry" in touched and (restarted_registry or not services.running(
            journal.services.get("registry", {}).get("pid"))):
        try:
            _restore_registry(journal, say)
        except Exception as exc:
            errors.append(f"registry restart: {exc}")
    journal.status = "failed_rollback" if errors else "rolled_back"
    journal.messages += errors
    try:
        journal.save()
    except OSError as exc:  # a full disk must not stop the report of what was restored
        errors.append(f"cannot save the journal {journal.path}: {exc}")
    for error in errors:
        say(f"rollback error: {error}")
    say("rollback complete" if not errors else "rollback INCOMPLETE: see the errors above and the journal")
    return not errors


def _anchor(journal: Journal) -> int | None:
    return services.anchor_for(journal.services, journal.services.get("registry", {}).get("netns"))


def _restore_registry(journal: Journal, say: Say) -> None:

    info = journal.services.get("registry") or {}
    if info.get("container"):
        services.restart_container(info)
        say(f"restarted with the original config: registry container {info['container'].get('name')}")
        return
    spec_file = Path(journal.backup_dir) / "registry-process.json"
    anchor = _anchor(journal)
    if anchor is None:
        raise StepError("no process left in the registry's network namespace to start it in")
    spec = ProcessSpec.from_json(bounded.load_json_file(spec_file, what="process spec")) if spec_file.exists() else \
        ProcessSpec.read(int(info["pid"]))
    holder = _hold_namespace(anchor)
    try:
        pid = int(info.get("pid") or 0)
        if services.running(pid) and pid != holder:
            services.stop(pid)
        saved = os.environ.pop(FAULT, None)
        try:
            new = services.start_registry(spec, holder, info.get("config"))
        finally:
            if saved is not None:
                os.environ[FAULT] = saved
    finally:
        _release(holder)
    journal.services.setdefault("registry", {})["pid"] = new
    journal.save()
    say(f"restarted with the original config: registry (pid {new})")


def rollback_last(say: Say) -> int:
    journal = Journal.load()
    if journal is None:
        raise UsageError("no remediation journal: nothing to roll back")
    if journal.status == "rolled_back":
        say(f"the last apply ({journal.id}) is already rolled back: nothing to do")
        return 0
    say(f"rolling back apply {journal.id} (status {journal.status})")
    return 0 if rollback(journal, say) else EXIT_ROLLBACK_INCOMPLETE


def confirm(say: Say) -> int:
    journal = Journal.load()
    if journal is None or not journal.firewall:
        raise UsageError("no firewall change is waiting for confirmation")
    if journal.firewall.get("reverted"):
        say("too late: the watchdog already reverted the firewall change")
        return 1
    if journal.status != "applied":
        raise UsageError(f"the last apply is {journal.status}: nothing to confirm")
    journal.firewall["confirmed"] = True
    journal.save()
    say("firewall change confirmed: the watchdog will not revert it")
    return 0
