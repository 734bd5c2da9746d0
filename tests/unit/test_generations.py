"""The shard generation record: its transitions, and which generation acts on an event."""

from __future__ import annotations

import pytest

from app.bot.acting import ActingGate, Decision
from app.coord.generations import (
    CLOCK_MARGIN_MS,
    PREPARE_FLOOR_MS,
    SWITCH_LEAD_MS,
    Record,
    Refused,
    State,
    snowflake_ms,
)

T0 = 1_800_000_000_000


def switching(at: int = T0 + 10_000) -> Record:
    """Gen 0 (4 shards) switching to gen 1 (8 shards) at `at`."""
    return Record.first(4).start(8, T0, "test").switch(1, at)


def test_a_cluster_that_never_resharded_has_gen_0_active_on_every_event() -> None:
    record = Record.first(4)
    assert record.active().number == 0
    assert record.acting_at(0) is record.acting_at(T0) is record.active()
    assert record.active().key_prefix == "shard"  # the keys of a cluster from before generations


def test_the_switch_moment_gives_every_event_to_exactly_one_generation() -> None:
    at = T0 + 10_000
    record = switching(at)
    old, new = record.get(0), record.get(1)
    assert old is not None and new is not None
    for created in (T0, at - 1, at, at + 1, at + 60_000):
        acting = [g.number for g in (old, new) if g.acts_on(created)]
        assert acting == ([0] if created < at else [1])


def test_a_preparing_generation_acts_on_nothing() -> None:
    record = Record.first(4).start(8, T0, "test")
    new = record.in_progress()
    assert new is not None and new.state is State.PREPARING
    assert not new.acts_on(T0) and not new.acts_on(T0 + 10**9)
    assert new.key_prefix == "gen1:shard" and new.handover_key == "gen1:handover"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda r: r.start(4, T0, "x"), "already runs 4 shards"),
        (lambda r: r.start(0, T0, "x"), "at least 1"),
        (lambda r: r.start(8, T0, "x").start(16, T0, "y"), "in progress"),
        (lambda r: r.switch(3, T0), "not waiting for its switch"),
        (lambda r: r.start(8, T0, "x").switch(1, T0).abandon(1, "late"), "already switching"),
        (lambda r: r.abandon(0, "x"), "not preparing"),
    ],
)
def test_changes_the_record_does_not_allow_are_refused(change: object, says: str) -> None:
    with pytest.raises(Refused, match=says):
        change(Record.first(4))  # type: ignore[operator]


def test_settle_moves_generations_on_at_their_moments() -> None:
    at = T0 + 10_000
    record = switching(at)
    assert record.settle(at - 1, 5_000) is None  # nothing due yet
    switched = record.settle(at, 5_000)
    assert switched is not None
    assert [g.state for g in switched.generations] == [State.DRAINING, State.ACTIVE]
    assert switched.active().number == 1
    assert switched.settle(at + 4_999, 5_000) is None
    retired = switched.settle(at + 5_000, 5_000)
    assert retired is not None and retired.get(0).state is State.RETIRED  # type: ignore[union-attr]
    assert retired.fence == record.fence + 2
    # a new reshard may start once nothing is in progress
    assert retired.start(4, at + 6_000, "back").in_progress() is not None


def test_abandoned_generation_leaves_the_active_one_untouched() -> None:
    record = Record.first(4).start(8, T0, "test").abandon(1, "close 4011")
    assert record.active().number == 0 and record.active().acts_until is None
    assert record.get(1).state is State.ABANDONED  # type: ignore[union-attr]
    assert record.in_progress() is None and [g.number for g in record.live()] == [0]


def test_history_keeps_the_last_finished_generations() -> None:
    record = Record.first(4)
    for n in range(1, 9):
        record = record.start(4 + n, T0, "x").abandon(n, "no")
    assert [g.number for g in record.generations] == [0, 4, 5, 6, 7, 8]


def test_the_record_survives_its_stored_form() -> None:
    record = switching()
    assert Record.loads(record.dumps()) == record


def test_snowflake_time() -> None:
    assert snowflake_ms(175928847299117063) == 1462015105796  # Discord's documented example


# -- the gate ------------------------------------------------------------------------------
def test_a_gate_decides_only_events_its_last_read_covers() -> None:
    gate = ActingGate(0)
    assert gate.decide(T0) is Decision.WAIT  # nothing read yet
    gate.update(Record.first(4), read_at_ms=T0)
    # nothing in progress: a reshard started after the read switches PREPARE_FLOOR_MS later
    horizon = T0 + PREPARE_FLOOR_MS - CLOCK_MARGIN_MS
    assert gate.decide(horizon - 1) is Decision.ACT
    assert gate.decide(horizon) is Decision.WAIT
    # one being prepared for long: its switch may be decided right after the read
    preparing = Record.first(4).start(8, T0 - 60_000, "test")
    gate.update(preparing, read_at_ms=T0)
    assert gate.decide(T0 + SWITCH_LEAD_MS - CLOCK_MARGIN_MS) is Decision.WAIT
    assert gate.decide(T0 + SWITCH_LEAD_MS - CLOCK_MARGIN_MS - 1) is Decision.ACT


def test_no_switch_comes_sooner_than_the_floor_after_its_start() -> None:
    record = Record.first(4).start(8, T0, "test").switch(1, T0 + 1)
    assert record.get(1).acts_from == T0 + PREPARE_FLOOR_MS  # type: ignore[union-attr]
    # and a record read after the switch was scheduled decides up to the floor past it
    assert record.decided_until(T0) == T0 + 2 * PREPARE_FLOOR_MS


def test_gates_of_two_generations_split_the_events_at_the_switch() -> None:
    record = switching()
    at = record.get(1).acts_from  # type: ignore[union-attr]
    assert at is not None
    old, new = ActingGate(0), ActingGate(1)
    for gate in (old, new):
        gate.update(record, read_at_ms=T0)
    assert (old.decide(at - 1), new.decide(at - 1)) == (Decision.ACT, Decision.SKIP)
    assert (old.decide(at), new.decide(at)) == (Decision.SKIP, Decision.ACT)


def test_held_events_run_in_order_once_the_record_is_read() -> None:
    gate = ActingGate(0)
    seen: list[int] = []
    handle = gate._gated("MESSAGE_CREATE", lambda data: seen.append(data["id"]))
    ids = [(T0 - 1_420_070_400_000 + i) << 22 for i in range(3)]
    for snowflake in ids:
        handle({"id": str(snowflake)})
    assert seen == [] and gate.held == 3  # nothing read yet: held
    gate.update(Record.first(4), read_at_ms=T0)
    assert seen == [str(i) for i in ids] and gate.held == 0


def test_without_generations_the_gate_always_acts() -> None:
    gate = ActingGate(None)
    assert gate.decide(T0) is Decision.ACT and gate.acting_now(T0)


# -- what count is wanted ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "largest", "total", "recommended", "concurrency", "wanted"),
    [
        (4, 1_900, 7_000, 4, 1, None),  # below 80 % of 2,500 and Discord agrees
        (4, 2_000, 7_900, 4, 1, 8),  # the largest shard passed 2,000: 1,000 guilds a shard
        (4, 1_000, 4_000, 6, 1, 6),  # Discord recommends more
        (4, 2_000, 7_900, 4, 16, 16),  # rounded up to max_concurrency
        (8, 2_000, 7_900, 4, 1, None),  # one lopsided shard, but 8 is already enough
    ],
)
def test_automatic_resharding_wants_room_for_growth(
    current: int, largest: int, total: int, recommended: int, concurrency: int, wanted: int | None
) -> None:
    from app.bot.resharding import wanted_by_growth

    assert wanted_by_growth(current, largest, total, recommended, 0.8, concurrency) == wanted


def test_a_reshard_beyond_discords_limits_is_refused_with_a_hint() -> None:
    from app.bot.reshard_command import budget_refusal

    assert budget_refusal(8, 1_000, 50, 1, 0) is None
    short = budget_refusal(8, 57, 50, 1, 3_600)
    assert short is not None and "8 identifies needed, 57 session starts left" in short
    assert "resets in 3600 s" in short
    odd = budget_refusal(10, 1_000, 50, 4, 0)
    assert odd is not None and "try --to 12" in odd
