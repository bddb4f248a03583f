"""`regaudit evaluate EVIDENCE [EVIDENCE...]`: re-judge saved evidence offline under any profile.

Several evidence files (say, outside from a client network and inside on the registry host) are
merged and judged as one audit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from auditor.console import make_console, print_report
from auditor.evidence import EvidenceFile, merge_evidence, utcnow
from auditor.gcpolicy import fewer_collections
from auditor.runner import RunOptions, Selection
from auditor.session import AuditSession, Outputs

from ._common import (
    add_profile_options,
    compliance_ids,
    fail_on,
    formats,
    load_engine,
    resolve_profile,
    split_list,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="re-judge a saved evidence file offline", description=__doc__)
    parser.add_argument("evidence", nargs="+", help="evidence file(s) written by `audit --evidence-out`")
    add_profile_options(parser)
    parser.add_argument("--now", action="store_true",
                        help="judge at the present time (default: the time the audit recorded)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = load_engine()
    profile, warnings = resolve_profile(args.profile, checks)
    wanted = formats(args.format)
    outputs = Outputs(formats=tuple(wanted), out_dir=Path(args.output), compliance=compliance_ids(args))
    selection = Selection(profile, split_list(args.select), split_list(args.skip))
    options = RunOptions(fail_on=fail_on(args, profile), warnings=list(warnings))
    now: dt.datetime | None = utcnow() if args.now else None
    with fewer_collections():
        evidence = merge_evidence([EvidenceFile.load(Path(p)) for p in args.evidence])
        done = AuditSession(checks, selection, options).evaluate(evidence, outputs, now)
    if "console" in wanted:
        print_report(make_console(), done.report, verbose=args.verbose)
    for path in done.written:
        print(f"report written: {path}", file=sys.stderr)
    return done.exit_code
