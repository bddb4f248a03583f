"""CPU-heavy reads done by forked children while this process does other work.

The storage walk is Python work (parsing manifests, hashing, building facts) that holds the GIL:
in a thread it runs in turn with the other probes (the scan directory's reports), never beside
them. Children run it on the other cores.

Contract: `in_children(fn, [args, ...])` returns `[fn(*args), ...]`, each computed in a child
forked for it on Linux when more than one CPU is usable, else in this process. Results must be
made of dicts, lists, strings, numbers, booleans and None (marshal: this interpreter's own
format, both ends being the same interpreter); each travels through an anonymous memory file read
once its child has exited (one read, where a pipe would wake this process's reading thread once
per 64 KiB, each time waiting for the GIL while other threads work). When a child cannot be
forked, fails or dies, its `fn(*args)` runs here instead: children change when the answer is
ready, never the answer or the error. A child interrupted by SIGINT (Ctrl-C reaches the whole
process group) raises KeyboardInterrupt here rather than starting the work again. With `timeout`
(seconds), children still running then are killed and TimeoutError is raised: a child that never
ends (a lock another thread held at the fork, say) cannot hold this process past its deadline.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Fork only where it is safe and can help: Linux (not macOS, whose frameworks do not survive
    a fork of a threaded process) with more than one usable CPU."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and usable_cpus() > 1


def in_children(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], timeout: float | None = None) -> list[T]:
    """`[fn(*args) for args in calls]`, each in a forked child when that can help (module contract)."""
    if not can_fork():
        return [fn(*args) for args in calls]
    deadline = None if timeout is None else time.monotonic() + timeout
    children: list[_Child | None] = []
    try:
        for args in calls:
            children.append(_Child.start(fn, args))
        # (no zip(strict=...): the gather zipapp runs on Python 3.9)
        return [child.result(fn, calls[n], deadline) if child else fn(*calls[n]) for n, child in enumerate(children)]
    finally:
        for child in children:
            if child:
                child.close()


class _Child:
    """One forked child computing fn(*args) into an anonymous memory file."""

    def __init__(self, pid: int, shared: int) -> None:
        self.pid = pid
        self.shared = shared
        self.reaped = False

    @classmethod
    def start(cls, fn: Callable[..., Any], args: tuple[Any, ...]) -> _Child | None:
        """The running child, or None when none could be started."""
        try:
            shared = os.memfd_create("regaudit-offload", os.MFD_CLOEXEC)
        except (AttributeError, OSError):
            return None
        try:
            pid = os.fork()
        except OSError:
            os.close(shared)
            return None
        if pid == 0:  # pragma: no cover - the child; it never returns into the parent's code
            _child(shared, fn, args)
        return cls(pid, shared)

    def result(self, fn: Callable[..., T], args: tuple[Any, ...], deadline: float | None = None) -> T:
        """What the child computed; fn(*args) computed here when it failed. TimeoutError when it is
        still running at `deadline` (time.monotonic())."""
        if deadline is not None and not self._ends_by(deadline):
            raise TimeoutError(f"offloaded work still running after its deadline (child {self.pid})")
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT:
            raise KeyboardInterrupt
        if os.waitstatus_to_exitcode(status) != 0:
            return fn(*args)
        size = os.fstat(self.shared).st_size
        data = bytearray()
        while len(data) < size:
            chunk = os.pread(self.shared, size - len(data), len(data))
            if not chunk:
                break
            data += chunk
        try:
            result: T = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return fn(*args)
        return result

    def _ends_by(self, deadline: float) -> bool:
        """Does the child exit before `deadline`? (Without pidfd, Linux before 5.3: waited for.)"""
        try:
            handle = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            return True
        try:
            waiting = select.poll()
            waiting.register(handle, select.POLLIN)
            return bool(waiting.poll(max(0.0, deadline - time.monotonic()) * 1000))
        finally:
            os.close(handle)

    def close(self) -> None:
        """Close the memory file; a child not waited for (an exception came first) is ended and reaped."""
        os.close(self.shared)
        if not self.reaped:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.reaped = True


def _child(shared: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:  # pragma: no cover
    """Compute, write, and leave without the parent's clean-up (atexit, buffers, temporary files)."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        view = memoryview(marshal.dumps(fn(*args)))
        while view:
            view = view[os.write(shared, view):]
        status = 0
    except BaseException:  # any failure: the parent computes the answer itself
        pass
    finally:
        os._exit(status)
