"""`python -m auditor.tlsprobe HOST [PORT]`: run a scan and print its JSON (for tests, benchmarks
and running the prober inside a network namespace)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from auditor.tlsprobe.scanner import ScanOptions, scan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditor.tlsprobe", description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int, nargs="?", default=443)
    parser.add_argument("--server-name", help="SNI and certificate name (default: host)")
    parser.add_argument("--address", action="append", help="scan this address instead of resolving")
    parser.add_argument("--ca-bundle")
    parser.add_argument("--timeout", type=float, default=5.0, help="per handshake (s)")
    parser.add_argument("--deadline", type=float, default=60.0, help="whole scan (s)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--no-certificates", action="store_true")
    args = parser.parse_args(argv)
    options = ScanOptions(timeout=args.timeout, deadline=args.deadline, concurrency=args.concurrency,
                          chunks=args.chunks, ca_bundle=args.ca_bundle,
                          certificates=not args.no_certificates)
    result = asyncio.run(scan(args.host, args.port, server_name=args.server_name,
                              addresses=args.address, options=options))
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
