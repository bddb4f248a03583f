"""Options and helpers shared by the audit-running subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from auditor.catalog import check_catalog, probe_catalog, validate_needs, writer_catalog
from auditor.checkapi import Check
from auditor.compliance import get_framework
from auditor.errors import UsageError
from auditor.model import Severity
from auditor.profile import DEFAULT_PROFILE, Profile, load_profile, validate_against_checks


def split_list(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


def add_profile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|FILE",
                        help=f"built-in profile name or YAML file (default {DEFAULT_PROFILE})")
    parser.add_argument("--select", action="append", metavar="IDS", help="only these checks: ids, globs, areas")
    parser.add_argument("--skip", action="append", metavar="IDS", help="not these checks: ids, globs, areas")
    parser.add_argument("--fail-on", metavar="SEVERITY",
                        help="exit 1 when a fail or error at or above this severity (default: profile's, else high)")
    parser.add_argument("--format", default="console,json", metavar="FORMATS",
                        help="comma list of report formats: console and the installed writers (default console,json)")
    parser.add_argument("--output", default="regaudit-reports", metavar="DIR", help="report directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="list passing results too")
    parser.add_argument("--compliance", action="append", metavar="IDS",
                        help="also show per-control status under these frameworks in every report "
                        "(`regaudit compliance list`)")


def compliance_ids(args: argparse.Namespace) -> tuple[str, ...]:
    """The --compliance framework ids, each checked to exist (UsageError otherwise)."""
    ids = split_list(getattr(args, "compliance", None))
    for framework_id in ids:
        get_framework(framework_id)
    return ids


def load_engine() -> Mapping[str, Check]:
    """Every installed check, each module imported when one of its checks is used (auditor/catalog.py)."""
    checks = check_catalog()
    validate_needs(checks, probe_catalog())
    return checks


def resolve_profile(ref: str, checks: Mapping[str, Check]) -> tuple[Profile, list[str]]:
    profile = load_profile(ref)
    warnings = validate_against_checks(profile, checks)
    for warning in warnings:
        print(f"regaudit: warning: {warning}", file=sys.stderr)
    return profile, warnings


def fail_on(args: argparse.Namespace, profile: Profile) -> Severity:
    if args.fail_on:
        try:
            return Severity.parse(args.fail_on)
        except ValueError as exc:
            raise UsageError(f"--fail-on: {exc}") from None
    return profile.fail_on or Severity.HIGH


def formats(text: str) -> list[str]:
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    known = {"console", *writer_catalog()}
    unknown = [f for f in wanted if f not in known]
    if unknown:
        raise UsageError(f"unknown report format(s) {', '.join(unknown)} (installed: {', '.join(sorted(known))})")
    return wanted


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
