"""The deadline rule (app/ops/deadline.py) in numbers."""

from __future__ import annotations

import math

from app.ops.deadline import (
    FIRST_RESPONSE_S,
    REPLY_RESERVE_S,
    TOKEN_LIFETIME_S,
    Deadline,
)

T0 = 1_800_000_000.0  # when the request was made


def slash(arrived_after: float, acknowledged: bool = False) -> Deadline:
    return Deadline(
        "slash", T0, T0 + arrived_after, FIRST_RESPONSE_S, 1.0, 30.0, lambda: acknowledged
    )


def test_a_slash_command_is_run_until_its_window_and_the_skew_have_passed() -> None:
    assert not slash(0.2).expired()
    assert not slash(3.9).expired()  # our clock may be 1 s ahead of Discord's
    assert slash(4.1).expired()


def test_its_work_fits_the_first_response_window_until_it_is_acknowledged() -> None:
    waiting = slash(0.5)
    assert waiting.reply_by() == T0 + FIRST_RESPONSE_S - 1.0
    assert waiting.work_until() == T0 + FIRST_RESPONSE_S - 1.0 - REPLY_RESERVE_S
    deferred = slash(0.5, acknowledged=True)
    assert deferred.reply_by() == T0 + TOKEN_LIFETIME_S - 1.0
    assert deferred.work_until() == T0 + 0.5 + 30.0  # COMMAND_TIMEOUT_S comes first


def test_a_prefix_command_has_its_age_limit_and_the_timeout() -> None:
    late = Deadline("prefix", T0, T0 + 30.8, 30.0, 1.0, 30.0)
    assert not late.expired() and late.reply_by() == math.inf
    assert late.work_until() == T0 + 30.8 + 30.0
    assert Deadline("prefix", T0, T0 + 30.8, 30.0, 0.5, 30.0).expired()
