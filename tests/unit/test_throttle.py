"""The log throttle: the first line at once, then at most one per interval, with a count."""

from __future__ import annotations

from app.ops.logs import Throttle


def test_a_throttled_line_passes_once_per_interval() -> None:
    now = [100.0]
    throttle = Throttle(every=60, clock=lambda: now[0])
    assert throttle.due() == 0
    assert [throttle.due() for _ in range(3)] == [None, None, None]
    now[0] += 59.9
    assert throttle.due() is None
    now[0] += 0.1
    assert throttle.due() == 4  # four held back since the last one
    assert throttle.due() is None
