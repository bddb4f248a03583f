"""in_children: the answers of fn(*args), computed by forked children, in order; a child that
fails, dies or returns what marshal cannot carry changes nothing but where the answer is computed;
one still running at the deadline is ended. The storage walk shared among children gives exactly
the facts of one walk."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from auditor.content import offload
from auditor.content.storage import StorageReader

from .test_content_fake import many_repositories

PARENT = os.getpid()

needs_fork = pytest.mark.skipif(not offload.can_fork(), reason="forks only on Linux with two or more CPUs")


def where(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def fails_in_child(n: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("only in the child")
    return n + 1


def dies_in_child(n: int) -> int:
    if os.getpid() != PARENT:
        os.kill(os.getpid(), signal.SIGKILL)
    return n + 2


def unmarshalable(n: int) -> object:
    return {"n": n, "set": frozenset({n}), "object": object} if os.getpid() != PARENT else n


@needs_fork
def test_children_compute_in_order() -> None:
    answers = offload.in_children(where, [(n,) for n in range(4)])
    assert [a for a, _pid in answers] == [0, 1, 4, 9]
    pids = {pid for _a, pid in answers}
    assert PARENT not in pids and len(pids) == 4


@needs_fork
def test_a_failing_child_changes_nothing_but_where() -> None:
    assert offload.in_children(fails_in_child, [(1,), (2,)]) == [2, 3]
    assert offload.in_children(dies_in_child, [(1,)]) == [3]
    assert offload.in_children(unmarshalable, [(5,)]) == [5]


def test_without_fork_everything_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "can_fork", lambda: False)
    assert offload.in_children(where, [(2,), (3,)]) == [(4, PARENT), (9, PARENT)]


@needs_fork
def test_walk_beside_equals_one_walk(tmp_path: Path) -> None:
    many_repositories(tmp_path, 70, big=(5, 60))  # the largest size in different children's shares

    def facts(walk: dict) -> dict:
        walk["stats"].pop("seconds")
        return walk

    one = facts(StorageReader(tmp_path).walk())
    assert one["largest_layer"]["repo"] == "many/repo-05"
    for children in (2, 3, 4):
        assert facts(StorageReader(tmp_path).walk_beside(children)) == one


def sleeps_in_child(n: int) -> int:
    if os.getpid() != PARENT:
        time.sleep(60)
    return n


@needs_fork
def test_a_child_past_the_deadline_is_ended() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        offload.in_children(sleeps_in_child, [(1,), (2,)], timeout=0.3)
    assert time.monotonic() - started < 5
    assert offload.in_children(sleeps_in_child, [], timeout=0.3) == []
