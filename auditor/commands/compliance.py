"""`regaudit compliance list` and `regaudit compliance show ID`: the built-in frameworks and their controls."""

from __future__ import annotations

import argparse

from auditor.compliance import get_framework, load_frameworks, unknown_check_ids
from auditor.errors import PluginError, UsageError

from ._common import load_engine, print_json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("compliance", help="list compliance frameworks, or show one's controls and checks",
                            description=__doc__)
    parser.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    parser.add_argument("framework", nargs="?", help="framework id (for show)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = load_engine()
    missing = unknown_check_ids(checks)
    if missing:
        raise PluginError(f"compliance frameworks name unknown checks: {missing}")
    if args.action == "list":
        frameworks = load_frameworks()
        if args.format == "json":
            print_json([{**f.describe(), "controls": len(f.controls)} for f in frameworks.values()])
            return 0
        for framework in frameworks.values():
            print(f"{framework.id:<16} {framework.title} — {framework.version} ({len(framework.controls)} controls)")
        return 0
    if not args.framework:
        raise UsageError("compliance show needs a framework id (regaudit compliance list)")
    framework = get_framework(args.framework)
    if args.format == "json":
        print_json({**framework.describe(), "controls": [
            {"id": c.id, "title": c.title, "checks": list(c.checks), "manual": c.manual} for c in framework.controls]})
        return 0
    print(f"{framework.title}\n  {framework.version}; source: {framework.source}")
    if framework.scope:
        print(f"  scope: {framework.scope}")
    for control in framework.controls:
        print(f"\n{control.id}  {control.title}")
        if control.checks:
            for check_id in control.checks:
                print(f"    {check_id:<26} {checks[check_id].meta.title}")
        else:
            print("    manual (no automated check)")
        if control.manual:
            print(f"    note: {control.manual}")
    return 0
