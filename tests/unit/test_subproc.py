"""The one command runner (auditor.subproc) on real processes: exit codes, input, bounded output,
timeouts (also when a child left behind holds the pipes), commands that cannot start, namespaces."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from auditor import subproc

PY = sys.executable
FLOOD = "import sys; sys.stdout.write('x' * (20 * 1024 * 1024)); sys.stderr.write('e' * 5000)"


def both(argv: list[str], **kwargs: object) -> list[subproc.Ran]:
    """The same command through the synchronous and the asynchronous runner."""
    return [subproc.run(argv, **kwargs), asyncio.run(subproc.run_async(argv, **kwargs))]  # type: ignore[arg-type]


def test_exit_code_and_output_are_returned_as_they_are() -> None:
    for ran in both([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"]):
        assert (ran.returncode, ran.stdout, ran.stderr, ran.problem, ran.ok) == (3, "out\n", "err\n", None, False)


def test_input_is_fed_and_stdin_is_otherwise_empty() -> None:
    echo = [PY, "-c", "import sys; print(sys.stdin.read().upper())"]
    assert subproc.run(echo, input="rules").stdout == "RULES\n"
    assert asyncio.run(subproc.run_async(echo, input=b"rules")).stdout == "RULES\n"
    for ran in both(echo):
        assert ran.stdout == "\n" and ran.ok


def test_output_is_bounded_and_the_rest_drained() -> None:
    for ran in both([PY, "-c", FLOOD], max_stdout=1000, max_stderr=10):
        assert ran.ok and ran.stdout == "x" * 1000 and ran.stderr == "e" * 10


def test_a_command_past_its_timeout_is_killed() -> None:
    for ran in both([PY, "-c", "import time; time.sleep(30)"], timeout=0.5):
        assert ran.problem == "timeout" and ran.returncode == 124 and "0.5" in ran.reason


def test_a_child_left_holding_the_pipes_does_not_outlive_the_timeout() -> None:
    started = time.monotonic()
    ran = subproc.run(["sh", "-c", "sleep 5 & echo started"], timeout=1.0)
    assert time.monotonic() - started < 4
    assert ran.problem == "timeout"


def test_a_missing_command_is_reported_not_raised() -> None:
    for ran in both(["regaudit-no-such-tool-xyz", "--version"]):
        assert ran.problem == "missing" and ran.returncode == 127
        assert ran.reason.startswith("regaudit-no-such-tool-xyz: ")


def test_a_command_that_cannot_execute_is_an_oserror(tmp_path: Path) -> None:
    data = tmp_path / "not-a-program"
    data.write_text("just data\n")
    data.chmod(0o644)
    for ran in both([str(data)]):
        assert ran.problem == "oserror" and ran.returncode == 126 and ran.reason.startswith(f"{data}: ")


def test_namespaces_are_entered_only_when_they_differ() -> None:
    assert subproc.in_namespaces(None, ["true"]) == ["true"]
    assert subproc.in_namespaces(os.getpid(), ["true"], ("net", "mnt")) == ["true"]
    assert subproc.ns_inode("self", "net") == subproc.ns_inode(os.getpid(), "net")
    assert subproc.ns_inode(2**22 + 12345, "net") is None


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/unshare"), reason="needs root and unshare")
def test_a_process_in_another_network_namespace_is_entered() -> None:
    import subprocess

    proc = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while subproc.ns_inode(proc.pid, "net") == subproc.ns_inode("self", "net") and time.monotonic() < deadline:
            time.sleep(0.05)
        argv = subproc.in_namespaces(proc.pid, ["ip", "-o", "link"])
        assert argv[:2] == ["nsenter", f"--net=/proc/{proc.pid}/ns/net"]
        ran = subproc.run(argv, timeout=10)
        assert ran.ok, ran
        assert [line.split(":")[1].strip() for line in ran.stdout.splitlines()] == ["lo"]
    finally:
        proc.kill()
        proc.wait()
