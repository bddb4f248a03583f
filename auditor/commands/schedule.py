"""`regaudit schedule install|remove|run`: audits on a timer (systemd) or cron."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from auditor import schedule
from auditor.cli import _Parser
from auditor.errors import UsageError
from auditor.target import parse_registry_url

from . import audit


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("schedule", help="install, remove or run a scheduled audit")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = actions.add_parser("install", help="write a systemd service and timer (or a cron.d entry)")
    install.add_argument("name", help="schedule name (lower-case, digits, dashes)")
    install.add_argument("url", nargs="?", help="registry URL (outside and content checks)")
    install.add_argument("--inside", action="store_true")
    install.add_argument("--profile", default="seed-hardened")
    install.add_argument("--at", default="03:17", help="daily time HH:MM (default 03:17, plus up to 10m jitter)")
    install.add_argument("--report-dir", default="/var/lib/regaudit/reports", help="reports go to DIR/<timestamp>/")
    install.add_argument("--keep", type=int, default=14, help="report directories kept (default 14)")
    install.add_argument("--prometheus-file", default="/var/lib/prometheus/node-exporter/regaudit.prom",
                         help="node_exporter textfile to update ('' for none)")
    install.add_argument("--mode", choices=("auto", "systemd", "cron"), default="auto",
                         help="auto: systemd when it runs, else cron")
    install.add_argument("--spec-dir", default="/etc/regaudit", type=Path)
    install.add_argument("--unit-dir", default="/etc/systemd/system", type=Path)
    install.add_argument("--cron-dir", default="/etc/cron.d", type=Path)
    install.add_argument("--audit-args", default="", metavar="'OPTIONS'",
                         help="more `regaudit audit` options, one quoted string (paths, --cosign-key ...)")
    install.set_defaults(func=do_install)
    remove = actions.add_parser("remove", help="remove a scheduled audit")
    remove.add_argument("name")
    remove.add_argument("--spec-dir", default="/etc/regaudit", type=Path)
    remove.set_defaults(func=do_remove)
    run = actions.add_parser("run", help="one scheduled run (what the timer executes)")
    run.add_argument("--spec", required=True, type=Path)
    run.set_defaults(func=do_run)


def do_install(args: argparse.Namespace) -> int:
    url = parse_registry_url(args.url) if args.url else None
    if not url and not args.inside:
        raise UsageError("nothing to audit: give the registry's URL, --inside, or both")
    try:
        extra = shlex.split(args.audit_args)
    except ValueError as exc:
        raise UsageError(f"--audit-args: {exc}") from None
    mode = args.mode if args.mode != "auto" else ("systemd" if schedule.systemd_running() else "cron")
    spec = schedule.ScheduleSpec(
        name=args.name, url=url, inside=args.inside, profile=args.profile, report_dir=args.report_dir,
        keep=args.keep, prometheus_file=args.prometheus_file or None, audit_args=extra,
    )
    for path in schedule.install(spec, args.spec_dir, args.unit_dir, args.cron_dir, args.at, mode):
        print(f"wrote {path}")
    return 0


def do_remove(args: argparse.Namespace) -> int:
    for path in schedule.remove(args.name, args.spec_dir):
        print(f"removed {path}")
    return 0


def do_run(args: argparse.Namespace) -> int:
    """One scheduled run: the spec's audit through the audit session, then rotate and publish."""
    spec = schedule.load_spec(args.spec)
    out = schedule.new_run_dir(spec)
    options = audit_options(spec, out)
    try:
        ready = audit.prepare(options)
        done = ready.session.audit(ready.target, ready.credentials, ready.outputs)
        audit.say_rescan(done.evidence)
        for path in done.written:
            print(f"report written: {path}", file=sys.stderr)
        return done.exit_code
    finally:
        schedule.publish(spec, out)


def audit_options(spec: schedule.ScheduleSpec, out: Path) -> argparse.Namespace:
    """The `audit` options of a scheduled run: the spec's target, profile and formats, the run's
    directory, then the spec's stored audit options (which win, as they always have)."""
    parser = _Parser(prog="regaudit schedule run (audit options)")
    audit.add_arguments(parser)
    parser.set_defaults(url=spec.url, inside=spec.inside, profile=spec.profile,
                        format=",".join(schedule.run_formats(spec)), output=str(out), no_progress=True)
    return parser.parse_args(spec.audit_args)
