"""`regaudit checks`, `regaudit explain ID`, `regaudit profiles [show NAME]`."""

from __future__ import annotations

import argparse
import textwrap

import yaml

from auditor.compliance import controls_for
from auditor.errors import UsageError
from auditor.plugins import load_checks
from auditor.profile import builtin_names, load_profile

from ._common import load_engine, print_json


def register(sub: argparse._SubParsersAction) -> None:
    checks = sub.add_parser("checks", help="list the installed checks (the catalog)")
    checks.add_argument("--format", choices=("table", "json"), default="table")
    checks.set_defaults(func=list_checks)
    explain = sub.add_parser("explain", help="explain one check")
    explain.add_argument("check_id")
    explain.set_defaults(func=explain_check)
    profiles = sub.add_parser("profiles", help="list built-in profiles, or show one resolved")
    profiles.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    profiles.add_argument("name", nargs="?", help="profile name or file (for show)")
    profiles.set_defaults(func=profiles_cmd)


def list_checks(args: argparse.Namespace) -> int:
    checks = load_checks()  # the catalog only: no probe (HTTP, TLS, sockets) is loaded
    if args.format == "json":
        print_json([{**c.meta.to_json(), "controls": controls_for(c.id)} for c in checks.values()])
        return 0
    width = max((len(c) for c in checks), default=10)
    for check_id, item in checks.items():
        meta = item.meta
        print(f"{check_id:<{width}}  {meta.severity.label:<8}  {meta.vantage.value:<7}  {meta.area:<10}  {meta.title}")
    return 0


def explain_check(args: argparse.Namespace) -> int:
    checks = load_checks()
    item = checks.get(args.check_id)
    if item is None:
        close = [c for c in checks if args.check_id.split(".")[0] in c]
        hint = f" (did you mean: {', '.join(close[:5])})" if close else ""
        raise UsageError(f"no check {args.check_id!r}{hint}")
    meta = item.meta
    wrap = textwrap.TextWrapper(width=96, initial_indent="  ", subsequent_indent="  ")
    print(f"{meta.id}: {meta.title}")
    print(f"  severity {meta.severity.label}, vantage {meta.vantage.value}, area {meta.area}")
    print(f"  guide: {meta.guide}")
    print(f"  source: {item.source}")
    for label, text in (("Why", meta.rationale), ("Passes when", meta.passes_when),
                        ("Remediation", meta.remediation)):
        print(f"\n{label}:")
        print(wrap.fill(text))
    if meta.generator:
        print(f"\nGenerator: {meta.generator} (regaudit remediate)")
    if meta.params:
        print("\nParameters (profile: params." + meta.id + "):")
        for key, value in meta.params.items():
            print(f"  {key}: {value!r}")
    if meta.references:
        print("\nReferences:")
        for ref in meta.references:
            print(f"  - {ref}")
    controls = controls_for(meta.id)
    if controls:
        print("\nCompliance controls (regaudit compliance show FRAMEWORK):")
        for control in controls:
            print(f"  - {control['framework']} {control['control']}: {control['title']}")
    print(f"\nEvidence: {', '.join(meta.needs)}")
    return 0


def profiles_cmd(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in builtin_names():
            profile = load_profile(name)
            print(f"{name:<14} {profile.description}")
        return 0
    if not args.name:
        raise UsageError("profiles show needs a profile name or file")
    checks = load_engine()
    profile = load_profile(args.name)
    data = profile.to_json()
    data["checks"] = [c for c, item in checks.items() if profile.selects(item.meta)]
    print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0
