"""The fuzz targets in CI: every seed and every committed crash input keeps its contract, and a short
coverage-guided run of every target (atheris, a few seconds each) finds nothing new.

Longer campaigns: `python bench/fuzz.py --seconds 600` (docs/reliability.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import REGRESSIONS, TARGETS, all_inputs

RUNNER = Path(__file__).resolve().parent / "run.py"
SHORT_RUN_SECONDS = 20


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_and_regression_inputs_keep_the_contract(name: str) -> None:
    inputs = all_inputs(name)
    assert inputs, f"target {name} has no seeds"
    for data in inputs:
        TARGETS[name](data)  # raises on a contract violation


def test_every_regression_input_belongs_to_a_target() -> None:
    folders = {p.name for p in REGRESSIONS.iterdir() if p.is_dir()} if REGRESSIONS.is_dir() else set()
    assert folders <= set(TARGETS), folders - set(TARGETS)
    assert folders, "crashes found so far are committed as regression inputs"


def test_a_short_coverage_guided_run_of_every_target_finds_no_crash(tmp_path: Path) -> None:
    """One atheris process runs all targets (the first input byte picks one) for a few seconds,
    after replaying every target's seeds and regression inputs under coverage instrumentation."""
    pytest.importorskip("atheris")
    proc = subprocess.run([sys.executable, str(RUNNER), "all", f"-max_total_time={SHORT_RUN_SECONDS}",
                           "-print_final_stats=1"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ARTIFACT_DIR": str(tmp_path)}, cwd=tmp_path)
    executed = re.search(r"stat::number_of_executed_units: (\d+)", proc.stderr)
    seeds = sum(len(all_inputs(n)) for n in TARGETS)
    assert proc.returncode == 0 and executed, proc.stderr[-4000:]
    assert int(executed.group(1)) >= seeds, f"{executed.group(1)} executions, fewer than the {seeds} seeds"
