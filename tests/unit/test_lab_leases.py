"""Leases on lab variants (tests/lab/leases.py) against real processes: a live holder counts, a
killed one never does, even when its lease file is named after a process id in use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from lab import leases

TESTS_DIR = Path(__file__).resolve().parents[1]
HOLDER = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from lab import leases
leases.take(Path(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()
"""


def _holder(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(TESTS_DIR), str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_counts_and_a_killed_one_does_not(tmp_path: Path) -> None:
    holder = _holder(tmp_path)
    try:
        assert leases.others_holding(tmp_path) == [tmp_path / str(holder.pid)]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert (tmp_path / str(holder.pid)).exists()  # it never released it ...
    assert leases.others_holding(tmp_path) == []  # ... yet nothing holds it, and it is cleared
    assert not (tmp_path / str(holder.pid)).exists()


def test_a_stale_lease_named_after_a_live_process_is_not_held(tmp_path: Path) -> None:
    # The lease of a session killed long ago, whose process id now belongs to a live process.
    (tmp_path / str(os.getppid())).touch()
    (tmp_path / "1").touch()
    assert leases.others_holding(tmp_path) == []


def test_a_released_lease_is_gone_and_a_second_session_sees_the_first(tmp_path: Path) -> None:
    mine = leases.take(tmp_path)
    assert mine.path == tmp_path / str(os.getpid()) and mine.path.exists()
    holder = _holder(tmp_path)
    try:
        leases.release(mine)
        assert not mine.path.exists()
        assert leases.others_holding(tmp_path) == [tmp_path / str(holder.pid)]
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert leases.others_holding(tmp_path) == []
    assert leases.others_holding(tmp_path / "missing") == []
