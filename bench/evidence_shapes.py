"""Benchmark of the evidence shape check on large content evidence (typed evidence, issue 13).

Builds `registry.content` values of N tags by repeating the tags of the recorded lab evidence
(tests/fixtures/lab-weak/outside.json), then measures, at each N:
  1. `value_mismatch` alone (the check an audit runs before judging and saving);
  2. `EvidenceFile.load` of the saved file (JSON parse + shape check), and the same parse without the
     check (json.loads), so the check's share of `regaudit evaluate`'s start is visible.
Prints one line per N: tags, check seconds, microseconds per tag, load seconds, parse seconds. Time per
tag staying flat as N grows shows the check is linear (one walk per value).

Usage: python3 bench/evidence_shapes.py --tags 1000,10000,40000
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.evidence import EvidenceFile  # noqa: E402
from auditor.evidence_schema import value_mismatch  # noqa: E402


def scaled(data: dict, tags: int) -> dict:
    out = copy.deepcopy(data)
    value = out["probes"]["registry.content"]["value"]
    sample = value["tags"]
    value["tags"] = [{**sample[n % len(sample)], "tag": f"t{n}"} for n in range(tags)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", default="1000,10000,40000", help="comma list of tag counts")
    args = parser.parse_args()
    base = json.loads((ROOT / "tests" / "fixtures" / "lab-weak" / "outside.json").read_text())
    print(f"{'tags':>8} {'check_s':>9} {'us/tag':>8} {'load_s':>8} {'parse_s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for tags in (int(t) for t in args.tags.split(",")):
            data = scaled(base, tags)
            value = data["probes"]["registry.content"]["value"]
            start = time.perf_counter()
            assert value_mismatch("registry.content", value) is None
            check = time.perf_counter() - start
            path = Path(tmp) / f"evidence-{tags}.json"
            path.write_text(json.dumps(data))
            start = time.perf_counter()
            EvidenceFile.load(path)
            load = time.perf_counter() - start
            start = time.perf_counter()
            json.loads(path.read_bytes())
            parse = time.perf_counter() - start
            print(f"{tags:>8} {check:>9.3f} {check / tags * 1e6:>8.1f} {load:>8.3f} {parse:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
