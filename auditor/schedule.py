"""Scheduled audits: a systemd service + timer (or a cron.d entry where systemd does not run).

`install` writes a run spec (JSON: what to audit and where reports go) and the units; the unit's
command is `regaudit schedule run --spec FILE`, which audits through the audit session
(auditor/session.py), writes the reports into a new timestamped directory (`new_run_dir`), then
`publish`es: keeps the newest `keep` directories and replaces the Prometheus textfile atomically.
`remove` deletes exactly the files `install` wrote (listed in the spec).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from auditor import bounded
from auditor.atomicfile import write_atomically
from auditor.errors import UsageError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass
class ScheduleSpec:
    """What a scheduled run audits and where its outputs go."""

    name: str
    url: str | None
    inside: bool
    profile: str
    report_dir: str
    keep: int
    prometheus_file: str | None
    formats: list[str] = field(default_factory=lambda: ["json", "html", "sarif", "junit", "prometheus"])
    audit_args: list[str] = field(default_factory=list)
    installed_files: list[str] = field(default_factory=list)
    mode: str = "systemd"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("auditor", "templates"), autoescape=False,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def regaudit_executable() -> str:
    found = shutil.which("regaudit")
    return str(Path(found).resolve()) if found else f"{sys.executable} -m auditor"


def install(spec: ScheduleSpec, spec_dir: Path, unit_dir: Path, cron_dir: Path, at: str, mode: str) -> list[Path]:
    """Write the spec and the units; return the files written. Refuses to overwrite another schedule."""
    if not NAME.match(spec.name):
        raise UsageError(f"schedule name {spec.name!r}: use lower-case letters, digits and dashes")
    match = AT.match(at)
    if not match:
        raise UsageError(f"--at {at!r}: use HH:MM (24h)")
    hour, minute = int(match.group(1)), int(match.group(2))
    spec_path = spec_dir / f"schedule-{spec.name}.json"
    if spec_path.exists():
        raise UsageError(f"a schedule named {spec.name} exists ({spec_path}); remove it first")
    unit = f"regaudit-{spec.name}"
    command = f"{regaudit_executable()} schedule run --spec {shlex.quote(str(spec_path))}"
    env_file = str(spec_dir / f"{spec.name}.env")
    values = {"name": spec.name, "target": spec.url or "local host (inside)", "command": command,
              "env_file": env_file, "unit": unit, "on_calendar": f"*-*-* {hour:02d}:{minute:02d}:00",
              "jitter": "10m", "hour": hour, "minute": minute}
    files: dict[Path, str] = {}
    if mode == "systemd":
        files[unit_dir / f"{unit}.service"] = _templates().get_template("regaudit.service.j2").render(values)
        files[unit_dir / f"{unit}.timer"] = _templates().get_template("regaudit.timer.j2").render(values)
    else:
        files[cron_dir / unit] = _templates().get_template("regaudit.cron.j2").render(values)
    for path in files:
        if path.exists():
            raise UsageError(f"{path} exists and was not written by this schedule; not overwriting it")
    spec.mode = mode
    spec.installed_files = [str(p) for p in files]
    written = []
    try:
        for path, text in files.items():
            write_atomically(path, text.encode(), mode=0o644)
            written.append(path)
        write_atomically(spec_path, (json.dumps(spec.to_json(), indent=2) + "\n").encode(), mode=0o600)
        written.append(spec_path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise UsageError(f"cannot install the schedule: {exc}") from None
    if mode == "systemd" and systemd_running():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
        subprocess.run(["systemctl", "enable", "--now", f"{unit}.timer"], check=False)
    return written


def load_spec(path: Path) -> ScheduleSpec:
    try:
        data = bounded.load_json_file(path, what="schedule spec", max_bytes=1024 * 1024)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return ScheduleSpec(**data)
    except bounded.InputError as exc:
        raise UsageError(f"cannot read {exc}") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"schedule spec {path} is not valid: {exc}") from None


def remove(name: str, spec_dir: Path) -> list[Path]:
    """Disable and delete everything `install` wrote for this schedule."""
    spec_path = spec_dir / f"schedule-{name}.json"
    spec = load_spec(spec_path)
    if spec.mode == "systemd" and systemd_running():
        subprocess.run(["systemctl", "disable", "--now", f"regaudit-{name}.timer"], check=False)
    removed = []
    for item in [*spec.installed_files, str(spec_path)]:
        path = Path(item)
        if path.exists():
            path.unlink()
            removed.append(path)
    if spec.mode == "systemd" and systemd_running():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return removed


def new_run_dir(spec: ScheduleSpec) -> Path:
    """The timestamped directory one scheduled run writes its reports into."""
    return Path(spec.report_dir) / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def run_formats(spec: ScheduleSpec) -> list[str]:
    """The report formats of a scheduled run: the spec's, always with json and prometheus."""
    return list(dict.fromkeys([*spec.formats, "json", "prometheus"]))


def publish(spec: ScheduleSpec, out: Path) -> None:
    """After a run (also a failed one): keep the newest `keep` directories, replace the textfile."""
    rotate(Path(spec.report_dir), spec.keep)
    prom = out / "regaudit.prom"
    if spec.prometheus_file and prom.exists():
        write_atomically(Path(spec.prometheus_file), prom.read_bytes(), mode=0o644)


def rotate(base: Path, keep: int) -> list[Path]:
    """Delete the oldest timestamped report directories beyond `keep`."""
    runs = sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"\d{8}T\d{6}Z", p.name))
    doomed = runs[:-keep] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def install_watch_unit(name: str, serve_args: str, unit_dir: Path, user: str = "regaudit") -> Path:
    """Write regaudit-watch-NAME.service running `regaudit watch serve SERVE_ARGS`; refuses to overwrite."""
    if not NAME.match(name):
        raise UsageError(f"watch name {name!r}: use lower-case letters, digits and dashes")
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", user):
        raise UsageError(f"--user {user!r}: not a user name")
    try:
        words = shlex.split(serve_args)
    except ValueError as exc:
        raise UsageError(f"--serve-args: {exc}") from None
    if any(w.startswith(("--password", "--token=")) and w != "--password-file" for w in words):
        raise UsageError("--serve-args: secrets go in the environment file or --token-file/--password-file, not argv")
    target = next((w for w in words if w.startswith(("https://", "http://"))), "the registry")
    unit = unit_dir / f"regaudit-watch-{name}.service"
    if unit.exists():
        raise UsageError(f"{unit} exists; not overwriting it")
    command = " ".join([regaudit_executable(), "watch", "serve", *(shlex.quote(w) for w in words)])
    values = {"name": name, "target": target, "command": command, "user": user,
              "env_file": f"/etc/regaudit/watch-{name}.env"}
    text = _templates().get_template("regaudit-watch.service.j2").render(values)
    try:
        write_atomically(unit, text.encode(), mode=0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {unit}: {exc}") from None
    return unit
