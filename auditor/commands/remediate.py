"""`regaudit remediate`: generate the guide's configs for what failed, show them, install them safely.

  --plan DIR   write every generated file to DIR, print a diff against each live file and the
               commands --apply would run; nothing on the host changes
  --apply      (root) back up, write atomically, validate, reload, re-audit; roll back on failure
  --rollback   undo the last apply (also after a crash halfway)
  --confirm    keep a firewall change (otherwise it reverts by itself after --firewall-timeout)

The audit is run inside (on the registry host) with the same target options as `audit`, or the
failing results come from recorded evidence (--evidence, --plan only).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor.credentials import load_credentials
from auditor.errors import UsageError
from auditor.evidence import EvidenceFile, merge_evidence
from auditor.model import Result
from auditor.remediation import apply as remediation_apply
from auditor.remediation.journal import exclusive
from auditor.remediation.model import Plan
from auditor.remediation.plan import build_plan, commands, diff, unresolved, write_plan
from auditor.remediation.site import Site
from auditor.runner import RunOptions, Selection
from auditor.session import AuditSession

from ._common import load_engine, resolve_profile, split_list
from .audit import PATH_OPTIONS, build_target


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("remediate", help="generate, show and safely install the configs that fix failures",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plan", metavar="DIR", help="write the generated files to DIR and show diffs; change nothing")
    mode.add_argument("--apply", action="store_true", help="install the plan (root), prove it, roll back on failure")
    mode.add_argument("--rollback", action="store_true", help="undo the last apply")
    mode.add_argument("--confirm", action="store_true", help="keep the firewall change of the last apply")
    parser.add_argument("url", nargs="?", help="the registry's public base URL (for the outside checks)")
    parser.add_argument("--evidence", nargs="+", metavar="FILE", help="plan from recorded evidence (no audit)")
    parser.add_argument("--profile", default="seed-hardened", metavar="NAME|FILE",
                        help="profile (default seed-hardened)")
    parser.add_argument("--select", action="append", metavar="IDS", help="only remediate these checks")
    parser.add_argument("--skip", action="append", metavar="IDS", help="do not remediate these checks")
    for key, flag in PATH_OPTIONS.items():
        parser.add_argument(flag, dest=key, metavar="PATH", help=f"explicit {key.replace('_', ' ')} path")
    parser.add_argument("--cosign-key", action="append", default=[], metavar="PEM", help="trusted cosign public key")
    parser.add_argument("--registry-port", type=int, help="the registry's own port when not 5000 / the config's")
    parser.add_argument("--deadline", type=float, default=300.0, metavar="SECONDS", help="audit deadline")
    parser.add_argument("--username", help="registry user (the password comes from the environment or a file)")
    parser.add_argument("--password-file", metavar="FILE", help="file holding the registry password")
    parser.add_argument("--docker-config", metavar="FILE", help="Docker config.json to read credentials from")
    parser.add_argument("--watch-endpoint", metavar="URL",
                        help="add the registry config's notifications endpoint for `regaudit watch serve` at URL "
                        "(https, or http on loopback), e.g. http://127.0.0.1:9471/events")
    parser.add_argument("--watch-token-file", metavar="FILE",
                        help="with --watch-endpoint: the token the registry sends as Authorization: Bearer")
    parser.add_argument("--recreate-containers", action="store_true",
                        help="with --apply: re-create the registry/nginx containers the plan changes (volumes kept; "
                        "the old container is renamed aside for rollback)")
    parser.add_argument("--firewall-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="revert a firewall change after this long unless --confirm (default 120)")
    parser.set_defaults(func=run, inside=True, active=False)


def say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.apply or args.rollback or args.confirm:
        with exclusive():
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.rollback:
        return remediation_apply.rollback_last(say)
    if args.confirm:
        return remediation_apply.confirm(say)
    if args.evidence and args.apply:
        raise UsageError("--apply audits the live host itself: --evidence is for --plan")
    if args.firewall_timeout <= 0:
        raise UsageError("--firewall-timeout must be positive")
    checks = load_engine()
    profile, warnings = resolve_profile(args.profile, checks)
    selection = Selection(profile, split_list(args.select), split_list(args.skip))
    session = AuditSession(checks, selection, RunOptions(deadline=args.deadline, warnings=list(warnings)))
    if args.apply:
        remediation_apply.preflight()
    if args.evidence:
        done = session.evaluate(merge_evidence([EvidenceFile.load(Path(p)) for p in args.evidence]))
        target_json = dict(done.evidence.target)
        reaudit = None
    else:
        target = build_target(args)
        credentials = load_credentials(target.host, args.password_file, args.username, args.docker_config)
        done = session.audit(target, credentials)
        target_json = target.describe()

        def reaudit(ids: set[str]) -> list[Result]:
            return list(session.narrowed(ids).audit(target, credentials).report.results)

    target_json.update(watch_endpoint_option(args))
    site = Site(records=done.evidence.records, results=done.report.results, profile=profile, checks=checks,
                target=target_json)
    plan = build_plan(site)
    missing = unresolved(plan)
    if missing:
        print(f"regaudit: internal error: no remediation for {', '.join(missing)}", file=sys.stderr)
    if args.plan:
        return show_plan(plan, Path(args.plan))
    assert reaudit is not None
    return remediation_apply.apply(plan, reaudit, say, args.firewall_timeout,
                                   recreate_containers=args.recreate_containers)


def watch_endpoint_option(args: argparse.Namespace) -> dict[str, Any]:
    """{"watch_endpoint": {url, token_file}} for the registry-config generator, or {}."""
    url, token_file = args.watch_endpoint, args.watch_token_file
    if not url and not token_file:
        return {}
    if not (url and token_file):
        raise UsageError("--watch-endpoint and --watch-token-file go together")
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not loopback):
        raise UsageError(f"--watch-endpoint {url}: use https, or http on loopback (the token travels in it)")
    if not Path(token_file).is_file():
        raise UsageError(f"--watch-token-file {token_file}: no such file")
    return {"watch_endpoint": {"url": url, "token_file": str(Path(token_file).absolute())}}


def show_plan(plan: Plan, out_dir: Path) -> int:
    written = write_plan(plan, out_dir)
    if not plan.failing:
        say("nothing to do: no check fails")
    for change in plan.files:
        if change.content is not None:
            say(f"--- {change.generator}: {change.path} (fixes {', '.join(change.checks) or '-'})")
            say(diff(change.path, change.content) or "(no difference)")
        else:
            say(f"--- {change.generator}: {change.describe()} (fixes {', '.join(change.checks)})")
    if plan.mounts or plan.firewall or plan.moves:
        say("--- live state changes")
        for line in [m.describe() for m in plan.moves] + [m.describe() for m in plan.mounts] + \
                [r.describe() for r in plan.firewall]:
            say(f"  {line}")
    for rule in plan.firewall:
        say(f"--- firewall: {rule.tool} rules added to the live ruleset (fixes {', '.join(rule.checks)})")
        say("".join(f"+{line}\n" for line in rule.restore.splitlines() if line and not line.startswith("#")))
    for container in plan.containers:
        say(f"--- {container.generator}: container {container.name} (fixes {', '.join(container.checks)}; "
            "applied only with --apply --recreate-containers, volumes kept)")
        say(f"-{shlex.join(container.before)}\n+{shlex.join(container.after)}")
    if plan.changes_host:
        say("--- commands --apply would run")
        for line in commands(plan):
            say(f"  {line}")
    for text in plan.texts:
        say(f"--- text only: {text.check}: {text.steps}")
    for note in plan.notes:
        say(f"note: {note}")
    say(f"plan written to {out_dir} ({len(written)} files; REMEDIATION.md, plan.json)")
    return 0
