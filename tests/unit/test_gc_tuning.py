"""The collector's tuning for the bot's process (app/ops/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.ops import gc_tuning


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test process's collector as it was (tuning is process-wide)."""
    before = gc.get_threshold()
    monkeypatch.setattr(gc_tuning, "_tuned", False)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_untuned_freeze_and_thaw_do_nothing(restored: None) -> None:
    gc_tuning.freeze()
    assert gc.get_freeze_count() == 0


def test_a_tuned_process_freezes_loaded_objects_and_thaws_them(restored: None) -> None:
    gc_tuning.tune()
    assert gc.get_threshold()[0] == gc_tuning.YOUNG_THRESHOLD
    cache = [{"member": i} for i in range(1_000)]
    gc_tuning.freeze()
    assert gc.get_freeze_count() >= len(cache)
    gc_tuning.thaw()
    assert gc.get_freeze_count() == 0
