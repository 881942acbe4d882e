"""kit.heap: what a server process does to its garbage collector once it is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kit import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_what_exists_and_spaces_collections_out() -> None:
    kept = [object() for _ in range(10)]
    heap.settle()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (
        heap.YOUNG_THRESHOLD,
        heap.MIDDLE_THRESHOLD,
        heap.OLD_THRESHOLD,
    )
    # Cycles made afterwards are still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
