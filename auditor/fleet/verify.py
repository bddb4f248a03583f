"""`python -m auditor.fleet.verify --key PUB EVIDENCE...`: check evidence signatures on arrival.

What the playbook runs on the control host right after fetching a host's evidence: each file's
detached signature (FILE.sig, regaudit-signature/1) must verify with the trusted public key.
Light on purpose (signing only, not the whole CLI): it runs once per host. Exit 0 all valid, 1 any
missing or invalid, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auditor import bounded
from auditor.errors import UsageError
from auditor.signing import PublicKey, load_public_key, verify


def check_signature(path: Path, key: PublicKey) -> str:
    """'valid ...' or raise ValueError with why the evidence must not be trusted."""
    sig = path.with_name(path.name + ".sig")
    try:
        if not sig.exists():
            raise FileNotFoundError(sig)
        envelope = bounded.load_json_file(sig, what="signature file", max_bytes=1024 * 1024)
    except OSError:
        raise ValueError(f"{path.name} has no signature ({sig.name} missing) but evidence signing is "
                         "configured") from None
    except ValueError:
        raise ValueError(f"{sig.name} is not JSON") from None
    valid, reason = verify(path.read_bytes(), envelope if isinstance(envelope, dict) else {}, key)
    if not valid:
        raise ValueError(f"{path.name}: signature INVALID: {reason}")
    return reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditor.fleet.verify", description=__doc__)
    parser.add_argument("--key", required=True, help="trusted public key (PEM)")
    parser.add_argument("evidence", nargs="+", help="evidence file(s); each FILE.sig beside it")
    args = parser.parse_args(argv)
    try:
        key = load_public_key(args.key)
    except UsageError as exc:
        print(f"regaudit: error: {exc}", file=sys.stderr)
        return 2
    code = 0
    for name in args.evidence:
        path = Path(name)
        try:
            if not path.is_file():
                raise ValueError(f"{path} is missing")
            print(f"{path}: OK: {check_signature(path, key)}")
        except ValueError as exc:
            print(f"{path}: INVALID: {exc}")
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
