"""Run every fuzz target (tests/fuzz/targets.py) under atheris and print executions and coverage.

    python bench/fuzz.py [--seconds 60] [--jobs 2] [--only NAME,...] [--artifacts DIR] [--corpus DIR]

Per target: executions, executions per second, libFuzzer's coverage (`cov`: edges of regaudit's
instrumented code reached; `ft`: features), corpus size, and the crash (its exception and the saved
input) if one was found. Each target runs in its own process with a per-input timeout of 10 s and a
2048 MB memory limit (a hang or a blow-up is a crash). With --corpus DIR the corpora are kept between
runs (DIR/<target>), so longer campaigns resume. Exit status 1 when any target crashed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNNER = REPO / "tests" / "fuzz" / "run.py"
STATS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")


@dataclass
class Outcome:
    name: str
    execs: int
    cov: int
    ft: int
    corpus: int
    seconds: float
    crash: str
    artifact: str


def targets() -> list[str]:
    sys.path.insert(0, str(REPO / "tests"))
    from fuzz.targets import TARGETS

    return list(TARGETS)


def run_target(name: str, seconds: float, artifacts: Path, corpus: Path | None) -> Outcome:
    env = {**os.environ, "ARTIFACT_DIR": str(artifacts)}
    if corpus is not None:
        env["CORPUS_DIR"] = str(corpus / name)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(RUNNER), name, f"-max_total_time={int(seconds)}",
                           "-print_final_stats=1"], capture_output=True, text=True, env=env,
                          timeout=seconds + 300)
    elapsed = time.monotonic() - started
    print(f"  {name}: done in {elapsed:.0f} s", file=sys.stderr, flush=True)
    err = proc.stderr
    execs = cov = ft = corp = 0
    for match in STATS.finditer(err):
        execs, cov, ft, corp = (int(g) for g in match.groups())
    final = re.search(r"stat::number_of_executed_units: (\d+)", err)
    if final:
        execs = int(final.group(1))
    crash = artifact = ""
    written = re.search(r"Test unit written to (\S+)", err)
    if written:
        artifact = written.group(1)
        lines = [ln for ln in err.splitlines() if re.match(r"^\w*(Error|Exception|Violation|Timeout)\b", ln)
                 or "ERROR: libFuzzer" in ln]
        crash = lines[0] if lines else "crash (see the artifact)"
    elif proc.returncode not in (0,):
        crash = f"runner exited {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"
    return Outcome(name, execs, cov, ft, corp, elapsed, crash, artifact)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="fuzzing time per target")
    parser.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once")
    parser.add_argument("--only", default="", help="comma list of targets")
    parser.add_argument("--artifacts", default="", help="where crashing inputs go (default a temp dir)")
    parser.add_argument("--corpus", default="", help="keep corpora here between runs")
    args = parser.parse_args()
    names = [n for n in targets() if not args.only or n in args.only.split(",")]
    artifacts = Path(args.artifacts or tempfile.mkdtemp(prefix="regaudit-fuzz-artifacts-"))
    artifacts.mkdir(parents=True, exist_ok=True)
    corpus = Path(args.corpus) if args.corpus else None
    print(f"fuzzing {len(names)} targets, {args.seconds:.0f} s each, {args.jobs} at once; crashes in {artifacts}")
    print(f"{'target':<20} {'execs':>9} {'exec/s':>7} {'cov':>6} {'ft':>7} {'corpus':>6}  crash")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(lambda n: run_target(n, args.seconds, artifacts, corpus), names))
    for o in outcomes:
        rate = o.execs / o.seconds if o.seconds else 0.0
        print(f"{o.name:<20} {o.execs:>9} {rate:>7.0f} {o.cov:>6} {o.ft:>7} {o.corpus:>6}  "
              f"{o.crash + (' -> ' + o.artifact if o.artifact else '') if o.crash else 'none'}")
    total = sum(o.execs for o in outcomes)
    crashed = [o for o in outcomes if o.crash]
    print(f"total: {total} executions, {len(crashed)} target(s) crashed")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
