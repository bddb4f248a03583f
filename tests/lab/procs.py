"""Starting and stopping the lab's processes, by PID only.

Contract: every process the lab starts is recorded as {name, pid, ns, match} where `match` is a
string that must appear in /proc/<pid>/cmdline (its config path). `stop` signals a PID only when
that still holds, so a recycled PID is never hit. Nothing is ever killed by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .netns import LabError

# Popen objects of children started from this process, reaped in stop() (no zombies in pytest).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def cmdline(pid: int) -> str:
    """/proc/<pid>/cmdline with NULs as spaces; '' if the process is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def alive(rec: Mapping[str, Any]) -> bool:
    """True when the recorded process still runs and is still the one we started."""
    pid = int(rec["pid"])
    return _state(pid) not in ("", "Z", "X") and str(rec["match"]) in cmdline(pid)


def exited(rec: Mapping[str, Any]) -> bool:
    """True when the recorded process is gone (or a zombie). Unlike `alive`, a process whose command
    line reads empty for a moment (while it execs) still counts as running: for waiting, never for
    signalling."""
    return _state(int(rec["pid"])) in ("", "Z", "X")


def spawn(ns: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Start argv in namespace ns as a long-running child in its own session; returns its PID.

    `ip netns exec` execs the command in place, so the PID is the server's own.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **env} if env else None)
    _CHILDREN[proc.pid] = proc
    return proc.pid


def run_daemon(ns: str, argv: Sequence[str], pid_file: Path, log: Path,
               env: Mapping[str, str] | None = None, timeout: float = 15.0) -> int:
    """Run a self-daemonising server (nginx, apache2) in ns and return the PID from its pid file."""
    if pid_file.exists():
        pid_file.unlink()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        cp = subprocess.run(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, **env} if env else None,
                            timeout=timeout, check=False)
    if cp.returncode != 0:
        raise LabError(f"{argv[0]} failed to start (rc={cp.returncode}); see {log}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = pid_file.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    raise LabError(f"{argv[0]} wrote no pid file {pid_file}; see {log}")


def stop(rec: Mapping[str, Any], grace: float = 10.0) -> str:
    """SIGTERM the recorded process (SIGKILL after `grace`); returns what happened."""
    pid = int(rec["pid"])
    if not alive(rec):
        _reap(pid)
        return f"{rec['name']} (pid {pid}) not running"
    os.kill(pid, signal.SIGTERM)
    # Identity was checked before signalling; now wait for the process itself to end (its cmdline
    # empties while it exits, so `alive` alone would return too early).
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if _state(pid) in ("", "Z", "X"):
            return f"{rec['name']} (pid {pid}) stopped"
        time.sleep(0.05)
    if alive(rec):
        os.kill(pid, signal.SIGKILL)
    wait_gone([pid], timeout=5)
    return f"{rec['name']} (pid {pid}) killed after {grace}s"


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        del _CHILDREN[pid]


def wait_gone(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """Wait until none of pids is a live process; returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        for pid in list(_CHILDREN):
            _reap(pid)
        left = [p for p in left if _state(p) not in ("", "Z", "X")]
        if left:
            time.sleep(0.05)
    return left
