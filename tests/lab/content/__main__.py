"""CLI: `python3 -m lab.content {populate,token-service,verify,scale} <lab.json> [options]`.

Exit status 0 on success, 1 when the registry or token service misbehaves, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import labconf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab.content", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pop = sub.add_parser("populate", help="push, sign and scan the lab content")
    pop.add_argument("lab_json")
    tok = sub.add_parser("token-service", help="serve the distribution token protocol over HTTPS")
    tok.add_argument("lab_json")
    ver = sub.add_parser("verify", help="check the registry and scans hold what content.json says")
    ver.add_argument("lab_json")
    sca = sub.add_parser("scale", help="push N x M small signed, scanned images")
    sca.add_argument("lab_json")
    sca.add_argument("--repos", type=int, default=100)
    sca.add_argument("--tags", type=int, default=10)
    sca.add_argument("--concurrency", type=int, default=32)
    sca.add_argument("--prefix", default="scale")
    args = parser.parse_args(argv)

    try:
        lab = labconf.load(args.lab_json)
    except (OSError, ValueError) as exc:
        print(f"lab.content: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "populate":
            from .populate import populate

            record = populate(lab)
            tags = sum(len(r["tags"]) for r in record["repositories"].values())
            print(json.dumps({"content_json": str(lab.content_json),
                              "repositories": len(record["repositories"]), "tags": tags,
                              "defects": len(record["defects"]), "seconds": record["populate_seconds"]}))
        elif args.command == "token-service":
            from .token import serve

            serve(lab)
        elif args.command == "verify":
            from .verify import verify

            result = verify(lab)
            print(json.dumps(result, indent=2))
            return 0 if result["ok"] else 1
        else:
            from .scale import scale

            result = scale(lab, repos=args.repos, tags=args.tags, concurrency=args.concurrency,
                           prefix=args.prefix)
            print(json.dumps(result))
    except ValueError as exc:
        print(f"lab.content: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"lab.content: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
