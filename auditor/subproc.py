"""The one command runner of probes and remediation: no shell, a timeout, bounded output, and
entering another process's namespaces.

Contract: `run_async(argv, ...)` (probes) and `run(argv, ...)` (remediation) never raise for a
command that cannot start, times out or exits non-zero: the returned :class:`Ran` says which
(`problem`, `reason`) and callers decide what that means (a probe's `error`, a remediation step's
failure). Standard output and error are read concurrently, each kept up to its bound and the rest
drained and dropped, so a runaway tool cannot exhaust memory. Standard input is /dev/null unless
`input` is given. `in_namespaces(pid, argv)` wraps argv in nsenter for the namespaces of `pid` that
differ from the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Literal

MAX_STDOUT = 8 * 1024 * 1024
MAX_STDERR = 1024 * 1024
CHUNK = 64 * 1024
Problem = Literal["missing", "oserror", "timeout"]


@dataclass(frozen=True)
class Ran:
    """The outcome of one command. `problem` is None when it ran to completion (any exit code)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    problem: Problem | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None and self.returncode == 0


def _not_run(argv: Sequence[str], problem: Problem, reason: str, code: int) -> Ran:
    return Ran(tuple(argv), code, "", reason, problem, reason)


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return dict(env) if env is not None else None


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


async def _read_bounded(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    kept = bytearray()
    if stream is None:
        return b""
    while chunk := await stream.read(CHUNK):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


async def run_async(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0,
                    input: bytes | None = None, max_stdout: int = MAX_STDOUT,
                    max_stderr: int = MAX_STDERR) -> Ran:
    """Run argv in the event loop; a command not found is `missing`, one past `timeout` is killed."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(env))
    except FileNotFoundError as exc:
        return _not_run(argv, "missing", f"{argv[0]}: {exc.strerror}", 127)
    except OSError as exc:
        return _not_run(argv, "oserror", f"{argv[0]}: {exc.strerror}", 126)

    async def feed() -> None:
        if input is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                try:
                    proc.stdin.write(input)
                    await proc.stdin.drain()
                finally:
                    proc.stdin.close()

    async def complete() -> tuple[bytes, bytes]:
        _, out, err = await asyncio.gather(feed(), _read_bounded(proc.stdout, max_stdout),
                                           _read_bounded(proc.stderr, max_stderr))
        await proc.wait()
        return out, err

    try:
        out, err = await asyncio.wait_for(complete(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return _not_run(argv, "timeout", f"{argv[0]} timed out after {timeout:g}s", 124)
    return Ran(tuple(argv), proc.returncode or 0, _decode(out), _decode(err))


def _drain(stream: IO[bytes], limit: int, into: bytearray) -> None:
    while chunk := stream.read(CHUNK):
        if len(into) < limit:
            into += chunk[: limit - len(into)]


def _feed(stream: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):  # a command that does not read its input
        try:
            stream.write(data)
        finally:
            stream.close()


def run(argv: Sequence[str], *, input: str | None = None, env: Mapping[str, str] | None = None,
        timeout: float = 60.0, max_stdout: int = MAX_STDOUT, max_stderr: int = MAX_STDERR) -> Ran:
    """Run argv to completion from synchronous code (the same contract as :func:`run_async`)."""
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(env))
    except FileNotFoundError as exc:
        return _not_run(argv, "missing", f"{argv[0]}: {exc.strerror}", 127)
    except OSError as exc:
        return _not_run(argv, "oserror", f"{argv[0]}: {exc.strerror}", 126)
    out, err = bytearray(), bytearray()
    assert proc.stdout is not None and proc.stderr is not None
    readers = [threading.Thread(target=_drain, args=(proc.stdout, max_stdout, out), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, max_stderr, err), daemon=True)]
    if proc.stdin is not None:
        readers.append(threading.Thread(target=_feed, args=(proc.stdin, (input or "").encode()), daemon=True))
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return _not_run(argv, "timeout", f"timed out after {timeout}s", 124)
    for reader in readers:  # a child it left behind may hold the pipes open: the deadline still holds
        reader.join(max(0.0, deadline - time.monotonic()))
    if any(reader.is_alive() for reader in readers):
        return _not_run(argv, "timeout", f"timed out after {timeout}s", 124)
    return Ran(tuple(argv), proc.returncode, _decode(bytes(out)), _decode(bytes(err)))


def ns_inode(pid: int | str, kind: str) -> int | None:
    """The inode of /proc/PID/ns/KIND (None when it cannot be read)."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def in_namespaces(pid: int | None, argv: Sequence[str], kinds: Sequence[str] = ("net",)) -> list[str]:
    """argv wrapped in nsenter for the namespaces of `pid` that differ from ours (argv itself otherwise)."""
    if not pid:
        return list(argv)
    flags = [f"--{'mount' if k == 'mnt' else k}=/proc/{pid}/ns/{k}" for k in kinds
             if ns_inode(pid, k) is not None and ns_inode(pid, k) != ns_inode("self", k)]
    return ["nsenter", *flags, "--", *argv] if flags else list(argv)
