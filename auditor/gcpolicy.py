"""How often the cyclic garbage collector runs while a command builds a large audit.

An audit of 10,000 tags allocates a few million dicts, lists and strings (facts, verdicts,
results) that live until its reports are written, and almost none of them is part of a
reference cycle: reference counting frees them. With the interpreter's default thresholds the
collector still runs hundreds of times over them (each full pass walks every live object),
about half a second of a 10,000-tag audit. `fewer_collections()` raises the first generation's
threshold for the duration of a command, so the collector runs tens of times instead: cyclic
garbage (rare: exceptions holding their frames, event loop internals) is still collected, a
little later, and the previous thresholds come back afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 100)  # the interpreter's defaults are (700, 10, 10)


@contextmanager
def fewer_collections(thresholds: tuple[int, int, int] = THRESHOLDS) -> Iterator[None]:
    """Collect cyclic garbage less often inside the block (module contract)."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)
