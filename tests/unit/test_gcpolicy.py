"""fewer_collections: raised collector thresholds inside the block, the previous ones after it
(also when the block raises); cyclic garbage made inside is still collected."""

from __future__ import annotations

import gc
import weakref

import pytest

from auditor.gcpolicy import THRESHOLDS, fewer_collections


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_thresholds_raised_inside_and_restored() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_cycles_are_still_collected() -> None:
    with fewer_collections():
        refs = [weakref.ref(Node()) for _ in range(2 * THRESHOLDS[0])]
    assert any(r() is None for r in refs)  # the first generation's collections ran inside the block
    gc.collect()
    assert all(r() is None for r in refs)
