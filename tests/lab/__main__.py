"""labctl: `python3 -m lab {up,down,status,info,selftest} VARIANT`.

Exit codes: 0 ok, 1 a lab operation or self-test failed, 2 usage (unknown variant, not root).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import lifecycle, netns, selftest
from .state import load
from .variants import VARIANTS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="labctl", description="regaudit lab: real registry deployments")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="bring a variant up (idempotent)")
    u.add_argument("variant", choices=list(VARIANTS))
    u.add_argument("--no-content", action="store_true", help="skip lab.content populate")
    u.add_argument("--recreate", action="store_true", help="tear down and rebuild even if up")
    d = sub.add_parser("down", help="tear a variant down completely")
    d.add_argument("variant", choices=[*VARIANTS, "all"])
    d.add_argument("--keep-files", action="store_true", help="keep the base dir (logs) for debugging")
    s = sub.add_parser("status", help="is each variant up?")
    s.add_argument("variant", nargs="?", choices=list(VARIANTS))
    i = sub.add_parser("info", help="print lab.json")
    i.add_argument("variant", choices=list(VARIANTS))
    t = sub.add_parser("selftest", help="verify the variant's seeded properties (independently of regaudit)")
    t.add_argument("variant", choices=list(VARIANTS))
    t.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    if args.cmd in ("up", "down", "selftest") and (why := netns.available()):
        print(f"labctl: {why}", file=sys.stderr)
        return 2
    try:
        if args.cmd == "up":
            t0 = time.monotonic()
            info = lifecycle.up(args.variant, content=not args.no_content, recreate=args.recreate)
            print(f"{args.variant} up ({time.monotonic() - t0:.1f}s): {info.state_file}")
        elif args.cmd == "down":
            t0 = time.monotonic()
            for name in VARIANTS if args.variant == "all" else [args.variant]:
                lifecycle.down(name, keep_files=args.keep_files)
            print(f"{args.variant} down ({time.monotonic() - t0:.1f}s)")
        elif args.cmd == "status":
            for name in [args.variant] if args.variant else list(VARIANTS):
                print(f"{name}: {'up' if lifecycle.is_up(name) else 'down'}")
        elif args.cmd == "info":
            print(json.dumps(load(args.variant).raw, indent=2))
        elif args.cmd == "selftest":
            report = selftest.run(load(args.variant))
            if args.json:
                print(json.dumps(report.as_json(), indent=2))
            else:
                print(report.render())
            return 0 if report.ok else 1
    except netns.LabError as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"labctl: {args.variant} is not up ({exc.filename})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
