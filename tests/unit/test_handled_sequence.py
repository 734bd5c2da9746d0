"""The saved sequence stays below the oldest command event still being handled."""

from __future__ import annotations

from typing import Any

from app.bot.handled_sequence import MAX_HOLD, HandledSequence, _Mark


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, *marks: _Mark) -> HandledSequence:
    handled = HandledSequence(bot=Any, clock=clock)  # type: ignore[arg-type]
    for mark in marks:
        handled._marks.setdefault(mark.shard_id, {})[mark.sequence] = mark
    return handled


def test_with_nothing_in_flight_the_last_sequence_received_is_saved() -> None:
    assert tracker(Clock()).through(0, "s", 41) == 41


def test_the_oldest_event_in_flight_holds_the_saved_sequence_below_it() -> None:
    clock = Clock()
    handled = tracker(clock, _Mark(3, "s", 40, clock.now), _Mark(3, "s", 44, clock.now))
    assert handled.through(3, "s", 50) == 39
    assert handled.through(2, "s", 50) == 50  # another shard's events hold nothing


def test_marks_of_an_older_session_or_past_max_hold_are_let_go() -> None:
    clock = Clock()
    handled = tracker(clock, _Mark(3, "old", 7, clock.now), _Mark(3, "s", 40, clock.now - 1))
    assert handled.through(3, "s", 50) == 39
    clock.now += MAX_HOLD
    assert handled.through(3, "s", 50) == 50
