"""`regaudit history` (scores over time) and `regaudit diff RUN1 RUN2` (new, fixed, still failing)."""

from __future__ import annotations

import argparse

from auditor import history

from ._common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    hist = sub.add_parser("history", help="scores of past audits, newest first")
    hist.add_argument("--target",
                      help="only runs of this target URL (or inside://HOST, or a fleet target's inventory name)")
    hist.add_argument("--limit", type=int, default=20)
    hist.add_argument("--format", choices=("table", "json"), default="table")
    hist.set_defaults(func=show_history)
    diff = sub.add_parser("diff", help="compare two runs: new, fixed and still-failing findings")
    diff.add_argument("old", help="run id (or unique prefix, latest, latest~N)")
    diff.add_argument("new", help="run id (or unique prefix, latest, latest~N)")
    diff.add_argument("--format", choices=("table", "json"), default="table")
    diff.set_defaults(func=show_diff)


def show_history(args: argparse.Namespace) -> int:
    found = history.runs(args.target, args.limit)
    if args.format == "json":
        print_json([r.to_json() for r in found])
        return 0
    if not found:
        print(f"no audits recorded in {history.state_dir()}")
        return 0
    for run in found:
        score = "n/a" if run.score is None else f"{run.score:5.1f}"
        print(f"{run.run_id[:12]}  {run.judged_at}  {score}  {run.grade:<3}  exit {run.exit_code}  "
              f"failing {run.failing:<4} {run.profile:<14} {run.target}")
    return 0


def show_diff(args: argparse.Namespace) -> int:
    result = history.diff(args.old, args.new)
    if args.format == "json":
        print_json(result)
        return 0
    for section in ("new", "fixed", "still_failing"):
        rows = result[section]
        print(f"{section.replace('_', ' ')} ({len(rows)}):")
        for row in rows:
            print(f"  {row['status'].upper():<6} {row['severity']:<8} {row['check']}  "
                  f"{row['subject']}: {row['message']}")
    return 0
