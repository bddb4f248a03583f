"""`regaudit verify-report REPORT --key PUB`: check a report's detached signature."""

from __future__ import annotations

import argparse
from pathlib import Path

from auditor import bounded
from auditor.errors import UsageError
from auditor.signing import load_public_key, verify


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("verify-report", help="verify a report's detached signature (exit 0 valid, 1 not)")
    parser.add_argument("report", help="the signed report (e.g. regaudit.json)")
    parser.add_argument("--key", required=True, help="trusted public key (PEM)")
    parser.add_argument("--signature", help="signature file (default: REPORT.sig)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = Path(args.report)
    sig_path = Path(args.signature) if args.signature else report.with_name(report.name + ".sig")
    try:
        data = bounded.read_bytes(report, what="report")
        envelope = bounded.load_json_file(sig_path, what="signature file", max_bytes=1024 * 1024)
    except bounded.InputError as exc:
        raise UsageError(f"cannot read {exc}") from None
    valid, reason = verify(data, envelope if isinstance(envelope, dict) else {}, load_public_key(args.key))
    print(f"{report}: {'OK' if valid else 'INVALID'}: {reason}")
    return 0 if valid else 1
