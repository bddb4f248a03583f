"""`regaudit fleet EVIDENCE_DIR --inventory INV`: judge a fleet's evidence centrally, one dashboard.

The evidence directory is what the Ansible playbook (contrib/ansible) fetched: one directory per
inventory host. Every target of the inventory group is judged under its own profile (inventory
variables `regaudit_profile`, `regaudit_waivers`), recorded in the history under its inventory
name, and reported on its own (targets/<name>/) and in the fleet report. Exit code: 0 when every
target passes its gate, 1 when any target fails at or above its --fail-on or could not be judged
(unreachable, evidence missing or not trusted), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from auditor import history
from auditor.catalog import writer_catalog
from auditor.errors import UsageError
from auditor.fleet.inventory import DEFAULT_GROUP, load_targets
from auditor.fleet.judge import TargetOutcome, judge_target, resolve_profile
from auditor.fleet.report import WRITERS, FleetReport, utc_now, write_fleet
from auditor.model import Severity
from auditor.profile import DEFAULT_PROFILE, Profile
from auditor.reportapi import write_report
from auditor.signing import PublicKey, load_public_key

from ._common import load_engine


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fleet", help="judge a fleet's gathered evidence and write the fleet report",
                            description=__doc__)
    parser.add_argument("evidence_dir", metavar="EVIDENCE_DIR", help="where the playbook fetched the evidence")
    parser.add_argument("--inventory", "-i", required=True, metavar="INVENTORY",
                        help="the playbook's Ansible inventory")
    parser.add_argument("--group", default=DEFAULT_GROUP,
                        help=f"inventory group of the targets (default {DEFAULT_GROUP})")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|FILE",
                        help=f"profile of targets without regaudit_profile (default {DEFAULT_PROFILE})")
    parser.add_argument("--fail-on", metavar="SEVERITY",
                        help="a target fails at a fail or error at or above this (default: each profile's, else high)")
    parser.add_argument("--format", default="html,json", metavar="FORMATS",
                        help=f"comma list of fleet report formats: {', '.join(WRITERS)} (default html,json)")
    parser.add_argument("--output", default="regaudit-fleet", metavar="DIR", help="report directory")
    parser.add_argument("--evidence-key", metavar="PEM",
                        help="trusted public key of the evidence signatures (default: inventory variable "
                        "regaudit_evidence_public_key); unsigned or altered evidence is then an error")
    parser.add_argument("--no-history", action="store_true", help="do not record the targets' runs in the history")
    parser.set_defaults(func=run)


def _formats(text: str) -> list[str]:
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in WRITERS]
    if unknown or not wanted:
        raise UsageError(f"unknown fleet report format(s) {', '.join(unknown) or '(none)'} "
                         f"(known: {', '.join(WRITERS)})")
    return wanted


def run(args: argparse.Namespace) -> int:
    evidence_dir = Path(args.evidence_dir)
    if not evidence_dir.is_dir():
        raise UsageError(f"{evidence_dir}: no such evidence directory")
    wanted = _formats(args.format)
    fail_on: Severity | None = None
    if args.fail_on:
        try:
            fail_on = Severity.parse(args.fail_on)
        except ValueError as exc:
            raise UsageError(f"--fail-on: {exc}") from None
    checks = load_engine()
    targets = load_targets(args.inventory, args.group)
    profiles: dict[tuple[str, str | None], Profile] = {}
    keys: dict[str, PublicKey] = {}
    out_dir = Path(args.output)
    writers = writer_catalog()  # only the writers of the formats asked for are imported
    outcomes: list[TargetOutcome] = []
    trends = {}
    for target in targets:
        profile = resolve_profile(target, args.profile, profiles)
        key_path = args.evidence_key or target.variables.get("regaudit_evidence_public_key")
        key = None
        if key_path:
            key = keys.get(str(key_path)) or keys.setdefault(str(key_path), load_public_key(str(key_path)))
        outcome = judge_target(target, evidence_dir, checks, profile, fail_on, key)
        past = history.trend({"name": target.name})
        if outcome.report is not None:
            report = outcome.report
            if not args.no_history:
                history.record(report)
                past = [*past, history.summary_of(report)]
            report = dataclasses.replace(report, history=tuple(past))
            outcome = dataclasses.replace(outcome, report=report)
            for name in ("json", "html"):
                write_report(writers[name], report, out_dir / "targets" / target.name)
        trends[target.name] = [dict(p) for p in past]
        outcomes.append(outcome)
    code = 1 if any(o.failing for o in outcomes) else 0
    fleet = FleetReport(tuple(outcomes), trends, utc_now(), code)
    written = write_fleet(fleet, wanted, out_dir)
    for outcome in outcomes:
        state = fleet.target_state(outcome)
        if outcome.report is not None:
            overall = outcome.report.scores.overall
            score = "n/a" if overall is None else f"{overall:.1f}"
            print(f"{outcome.name}: {state} (score {score}, grade {outcome.report.scores.grade}, "
                  f"{len(outcome.report.failing())} failing)")
        else:
            print(f"{outcome.name}: error: {outcome.reason}")
    for path in written:
        print(f"report written: {path}", file=sys.stderr)
    return code
