"""Failing results -> generators -> a Plan; writing a plan directory with diffs and commands.

Every failing check resolves to its generator (meta.generator) or to text: a check no generator
can fix gets its steps as text, never a pretend fix.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from auditor.atomicfile import write_atomically
from auditor.errors import PluginError

from . import (
    apache_vhost,
    artifacts,
    containers,
    file_permissions,
    firewall,
    fstab_tmpfs,
    nginx_server,
    registry_config,
)
from .model import Plan, TextRemedy
from .site import Site, read_live

Generator = Callable[[Site, Plan], None]

GENERATORS: dict[str, Generator] = {
    "registry-config": registry_config.generate,
    "nginx-server": nginx_server.generate,
    "apache-vhost": apache_vhost.generate,
    "fstab-tmpfs": fstab_tmpfs.generate,
    "firewall": firewall.generate,
    "file-permissions": file_permissions.generate,
    "cosign-ci": artifacts.cosign_ci,
    "scan-script": artifacts.scan_script,
    "gc-script": artifacts.gc_script,
    "storage-alert": artifacts.storage_alert,
    "kyverno-policy": artifacts.kyverno_policy,
    "container-run": containers.generate,
}


ENTRY_POINTS = "regaudit.generators"


def installed_generators() -> dict[str, Generator]:
    """The built-in generators plus third-party ones from the `regaudit.generators` entry points.

    An entry point's name is the generator name checks use in `meta.generator`; it loads a callable
    `(site, plan) -> None`. A third party cannot replace a built-in generator.
    """
    found = dict(GENERATORS)
    for ep in entry_points(group=ENTRY_POINTS):
        if ep.name in GENERATORS:
            raise PluginError(f"entry point {ep.name} ({ep.value}) in {ENTRY_POINTS}: a built-in generator "
                              "has that name")
        try:
            loaded = ep.load()
        except Exception as exc:
            raise PluginError(f"entry point {ep.name} ({ep.value}) in {ENTRY_POINTS} failed to load: {exc}") from exc
        if not callable(loaded):
            raise PluginError(f"entry point {ep.name} ({ep.value}) in {ENTRY_POINTS} is not callable")
        found[ep.name] = loaded
    return found


def build_plan(site: Site) -> Plan:
    """Run every generator a failing check names; add text for what no generator fixes."""
    plan = Plan()
    failing = sorted(site.failing_ids())
    for check_id in failing:
        item = site.checks.get(check_id)
        plan.failing[check_id] = item.meta.generator if item else None
    generators = installed_generators()
    for name in sorted({g for g in plan.failing.values() if g}):
        generator = generators.get(name)
        if generator is None:
            plan.notes.append(f"no generator named {name!r} is installed: text remediation only")
            continue
        generator(site, plan)
    for check_id in failing:
        if check_id in plan.expected or any(t.check == check_id for t in plan.texts):
            continue
        if check_id in artifacts.TEXTS:
            artifacts.text_only(site, plan, check_id, plan.failing[check_id])
            continue
        item = site.checks.get(check_id)
        subjects = tuple(sorted({r.subject for r in site.failing(check_id)}))
        steps = item.meta.remediation if item else "see the check's documentation (regaudit explain)"
        plan.texts.append(TextRemedy(check_id, subjects, steps, plan.failing[check_id]))
    plan.services = {s: site.discovery(s) for s in ("registry", "nginx", "apache")}
    engine = ((site.value("host.discovery") or {}).get("docker") or {}).get("socket")
    for info in plan.services.values():
        if info.get("container") and engine:
            info["engine"] = engine
    plan.expected &= set(failing)
    return plan


def unresolved(plan: Plan) -> list[str]:
    """Failing checks with neither a change that fixes them nor a text remedy (must be empty)."""
    texts = {t.check for t in plan.texts}
    return [c for c in plan.failing if c not in plan.expected and c not in texts]


SECRET_LINE = re.compile(r"(?i)^([-+ ]\s*(?:[\w.-]*(?:secret|password|passwd|token|accesskey|secretkey)[\w.-]*)"
                         r"\s*[:=]\s*)(\S.*)$")


CREDENTIAL_LINE = re.compile(r"(?i)^([-+ ].*\b(?:Bearer|Basic)\s+)([^\s\]'\"]+)")


def mask_secrets(text: str) -> str:
    """Values of secret-looking keys (http.secret, storage credentials) and Bearer/Basic credentials
    (a notifications endpoint's Authorization header) masked in shown text."""
    return "\n".join(CREDENTIAL_LINE.sub(r"\1[redacted]", SECRET_LINE.sub(r"\1[redacted]", line))
                     for line in text.split("\n"))


def diff(path: str, new: bytes) -> str:
    """Unified diff of the live file (empty when missing) against `new`, secret values masked."""
    old = read_live(path) or b""
    return mask_secrets("".join(difflib.unified_diff(
        old.decode(errors="replace").splitlines(keepends=True), new.decode(errors="replace").splitlines(keepends=True),
        fromfile=f"{path} (live)", tofile=f"{path} (regaudit)")))


def commands(plan: Plan) -> list[str]:
    """What apply would run, in order, as shell-like lines (for people; apply does not use a shell)."""
    from .services import reload_description
    from .validate import validation_command

    out = []
    for change in plan.files:
        out.append(f"backup + {change.describe()}")
    for change in plan.files:
        if change.validate and change.content is not None:
            out.append(validation_command(change, plan.services))
    for move in plan.moves:
        out.append(move.describe())
    for mount in plan.mounts:
        out.append(mount.describe())
    for rule in plan.firewall:
        out.append(f"{rule.tool}-restore --test --noflush; {rule.describe()}; watchdog restores the saved "
                   "ruleset unless `regaudit remediate --confirm`")
    for change in plan.containers:
        out.append(f"with --recreate-containers: {change.describe()}: stop and rename it aside (kept for rollback), "
                   "create and start it again from its own settings with the changes above")
    for service in plan.services_to_reload():
        out.append(reload_description(service, plan.services.get(service) or {}))
    if plan.expected:
        out.append("re-audit: " + ", ".join(sorted(plan.expected)) + " (rollback of everything on failure)")
    return out


def plan_files(plan: Plan) -> dict[str, bytes]:
    """Relative path in the plan directory -> content."""
    out: dict[str, bytes] = {}
    for change in plan.files:
        if change.content is not None:
            out["files/" + change.path.lstrip("/")] = change.content
    for artifact in plan.artifacts:
        out[artifact.name] = artifact.content
    return out


def summary(plan: Plan) -> dict:
    return {
        "failing": plan.failing,
        "expected_to_pass_after_apply": sorted(plan.expected),
        "files": [{"path": f.path, "generator": f.generator, "checks": list(f.checks), "change": f.describe(),
                   "note": f.note} for f in plan.files],
        "mounts": [m.describe() for m in plan.mounts],
        "moves": [m.describe() for m in plan.moves],
        "firewall": [r.describe() for r in plan.firewall],
        "containers": [{"name": c.name, "change": c.describe(), "checks": list(c.checks), "before": list(c.before),
                        "after": list(c.after)} for c in plan.containers],
        "artifacts": [{"name": a.name, "generator": a.generator, "checks": list(a.checks), "purpose": a.purpose}
                      for a in plan.artifacts],
        "text": [{"check": t.check, "subjects": list(t.subjects), "steps": t.steps, "generator": t.generator}
                 for t in plan.texts],
        "notes": plan.notes,
        "commands": commands(plan),
    }


def remediation_text(plan: Plan) -> str:
    lines = ["# Remediation steps no config can perform", ""]
    for text in plan.texts:
        lines.append(f"## {text.check}" + (f" (generator {text.generator})" if text.generator else ""))
        if text.subjects:
            lines.append("Subjects: " + ", ".join(text.subjects))
        lines += [text.steps, ""]
    if plan.notes:
        lines += ["# Notes", *[f"- {n}" for n in plan.notes], ""]
    return "\n".join(lines)


def write_plan(plan: Plan, out_dir: Path) -> list[Path]:
    """Write every generated file, the text steps and plan.json under `out_dir` (never the live paths)."""
    written = []
    modes = {a.name: a.mode for a in plan.artifacts}
    for name, content in plan_files(plan).items():
        path = out_dir / name
        # Generated copies of live configs may hold their secrets (http.secret ...): owner-only.
        write_atomically(path, content, modes.get(name, 0o600))
        written.append(path)
    for name, content in (("REMEDIATION.md", remediation_text(plan).encode()),
                          ("plan.json", (json.dumps(summary(plan), indent=2) + "\n").encode())):
        write_atomically(out_dir / name, content)
        written.append(out_dir / name)
    return written
