"""Cases: numbering, history filters and keyset pages, edits, pardons, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.errors import CaseStateError, IdempotencyConflict
from app.domain.outbox import MAX_ATTEMPTS
from app.domain.types import ActionState, CaseState, DmState, EffectKind
from tests.conftest import Backend

G = 666666666666666666
MOD_A, MOD_B = 7, 8
T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def test_history_filters_and_pages(backend: Backend) -> None:
    for i in range(25):
        action = ("warn", "note", "kick")[i % 3]
        await backend.moderation.open_case(
            G, action, 100 + i % 2, (MOD_A, MOD_B)[i % 2], f"r{i}", now=T0 + timedelta(hours=i)
        )
    await backend.moderation.open_case(G + 1, "warn", 100, MOD_A, "other guild")
    seen: list[int] = []
    before = None
    while True:
        page = await backend.moderation.history(G, 100, before=before, limit=4)
        seen += [c.number for c in page.cases]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == list(range(25, 0, -2))  # member 100 got the odd numbers, newest first
    warns = await backend.moderation.history(G, action="warn", limit=50)
    assert [c.number for c in warns.cases] == list(range(25, 0, -3))
    by_b = await backend.moderation.history(G, moderator_id=MOD_B, limit=50)
    assert {c.moderator_id for c in by_b.cases} == {MOD_B} and len(by_b.cases) == 12
    recent = await backend.moderation.history(G, since=T0 + timedelta(hours=20), limit=50)
    assert [c.number for c in recent.cases] == [25, 24, 23, 22, 21]
    exported = [c.number async for c in backend.moderation.export(G, chunk=7)]
    assert exported == list(range(1, 26))


async def test_reason_edits_and_pardon_are_recorded(backend: Backend) -> None:
    case = await backend.moderation.open_case(G, "warn", 100, MOD_A, "spam")
    await backend.moderation.edit_reason(G, case.number, MOD_B, "spam in #general")
    pardoned = await backend.moderation.pardon(G, case.number, MOD_A, "appealed")
    assert pardoned.state == CaseState.PARDONED
    fetched = await backend.moderation.get_case(G, case.number)
    assert (fetched.reason, fetched.state) == ("spam in #general", CaseState.PARDONED)
    trail = [
        (e.editor_id, e.field, e.old_value, e.new_value, e.note)
        for e in await backend.moderation.edits(G, fetched.number)
    ]
    assert trail == [
        (MOD_B, "reason", "spam", "spam in #general", ""),
        (MOD_A, "state", "active", "pardoned", "appealed"),
    ]


async def test_expiry_and_supersession(backend: Backend) -> None:
    cases, outbox = backend.moderation, backend.outbox
    ban = await cases.open_case(G, "tempban", 100, MOD_A, "raid", timedelta(hours=1), now=T0)
    timeout = await cases.open_case(G + 1, "timeout", 5, MOD_A, "", timedelta(minutes=10), now=T0)
    assert await outbox.next_due([G]) == T0 + timedelta(hours=1)
    assert await outbox.expire_due(T0 + timedelta(minutes=9), [G, G + 1]) == []
    ended = await outbox.expire_due(T0 + timedelta(hours=2), [G])
    assert [(c.number, c.state, c.lift_state) for c in ended] == [
        (ban.number, CaseState.EXPIRED, ActionState.PENDING)  # the unban goes to the outbox
    ]
    assert await outbox.expire_due(T0 + timedelta(hours=2), [G]) == []  # done once
    assert await cases.live_effect(G, 100, EffectKind.BAN) is None

    # A newer timeout ends the older one, so the older one can never lift it early.
    newer = await cases.open_case(G + 1, "timeout", 5, MOD_B, "", timedelta(days=1), now=T0)
    assert (await cases.get_case(G + 1, timeout.number)).state == CaseState.EXPIRED
    assert await outbox.expire_due(T0 + timedelta(hours=2), [G + 1]) == []
    assert (await cases.get_case(G + 1, newer.number)).state == CaseState.ACTIVE
    live = await cases.live_effect(G + 1, 5, EffectKind.TIMEOUT)
    assert live is not None and (live.number, live.until) == (newer.number, T0 + timedelta(days=1))
    # Discord ends a timeout itself: its expiry needs no Discord work.
    (over,) = await outbox.expire_due(T0 + timedelta(days=2), [G + 1])
    assert (over.number, over.lift_state) == (newer.number, ActionState.NONE)


async def test_pardoning_an_old_ban_leaves_the_newer_one(backend: Backend) -> None:
    cases = backend.moderation
    first = await cases.open_case(G, "ban", 100, MOD_A, "raid")
    unban = await cases.open_case(G, "unban", 100, MOD_A, "appeal")
    assert (await cases.get_case(G, first.number)).state == CaseState.EXPIRED
    third = await cases.open_case(G, "ban", 100, MOD_B, "raid again")
    pardoned = await cases.pardon(G, first.number, MOD_B, "old news")
    assert (pardoned.state, pardoned.lift_state) == (CaseState.PARDONED, ActionState.NONE)
    live = await cases.live_effect(G, 100, EffectKind.BAN)
    assert live is not None and live.number == third.number
    # A permanent ban pardoned during a newer tempban leaves the tempban too.
    temp = await cases.open_case(G, "tempban", 100, MOD_A, "x", timedelta(days=1))
    assert (await cases.get_case(G, third.number)).state == CaseState.EXPIRED
    await cases.pardon(G, third.number, MOD_A, "y")
    assert (await cases.live_effect(G, 100, EffectKind.BAN)).number == temp.number  # type: ignore[union-attr]  # None fails the test
    lifted = await cases.pardon(G, temp.number, MOD_A, "z")
    assert lifted.lift_state == ActionState.PENDING
    assert await cases.live_effect(G, 100, EffectKind.BAN) is None
    assert unban.state == CaseState.ACTIVE and unban.action_state == ActionState.PENDING


async def test_an_applied_kick_or_ban_ends_a_timeout(backend: Backend) -> None:
    cases, outbox = backend.moderation, backend.outbox
    await cases.open_case(G, "timeout", 100, MOD_A, "", timedelta(hours=1))
    kick = await cases.open_case(G, "kick", 100, MOD_A, "")
    assert kick.action_state == ActionState.PENDING
    # Recorded, not yet applied: the member is still there, and so is their timeout.
    assert await cases.live_effect(G, 100, EffectKind.TIMEOUT) is not None
    await outbox.settle(G, kick.number, action=ActionState.APPLIED)
    assert await cases.live_effect(G, 100, EffectKind.TIMEOUT) is None
    assert (await cases.get_case(G, 1)).state == CaseState.EXPIRED
    # A ban Discord refused leaves the timeout; one done by hand in Discord ends it at once.
    await cases.open_case(G, "timeout", 100, MOD_A, "", timedelta(hours=1))
    ban = await cases.open_case(G, "ban", 100, MOD_A, "")
    await outbox.settle(G, ban.number, action=ActionState.FAILED, note="403")
    assert (await cases.live_effect(G, 100, EffectKind.TIMEOUT)).number == 3  # type: ignore[union-attr]  # None fails the test
    await cases.open_case(G, "ban", 100, MOD_B, "by hand", done_in_discord=True)
    assert await cases.live_effect(G, 100, EffectKind.TIMEOUT) is None


async def test_outbox_claims_once_and_records_how_it_went(backend: Backend) -> None:
    cases, outbox = backend.moderation, backend.outbox
    lease = timedelta(seconds=30)
    ban = await cases.open_case(G, "ban", 100, MOD_A, "raid", notify=True)
    manual = await cases.open_case(G, "ban", 101, MOD_A, "by hand", done_in_discord=True)
    assert (ban.pending, ban.dm_state, ban.action_state) == (
        True,
        DmState.PENDING,
        ActionState.PENDING,
    )
    assert (manual.pending, manual.action_state) == (False, ActionState.APPLIED)
    (claimed,) = await outbox.claim([G], T0, lease)
    assert claimed.number == ban.number
    assert await outbox.claim([G], T0 + timedelta(seconds=29), lease) == []  # held
    assert await outbox.claim_case(G, ban.number, T0, lease) is None
    assert await outbox.start_dm(G, ban.number)
    assert not await outbox.start_dm(G, ban.number)  # at most once
    # The claimer stops here; the next claim after the lease finds the DM's fate unknown.
    (again,) = await outbox.claim([G], T0 + timedelta(seconds=31), lease)
    assert (again.dm_state, again.action_state) == (DmState.UNKNOWN, ActionState.PENDING)
    done = await outbox.settle(G, ban.number, action=ActionState.APPLIED)
    assert not done.pending and done.dm_delivered is False
    await outbox.release(G, ban.number)
    assert await outbox.pending(G) == []

    failed = await cases.open_case(G, "timeout", 102, MOD_A, "", timedelta(hours=1))
    settled = await outbox.settle(G, failed.number, action=ActionState.FAILED, note="403")
    assert (settled.state, settled.action_state, settled.action_note) == (
        CaseState.EXPIRED,
        ActionState.FAILED,
        "403",
    )
    assert await cases.live_effect(G, 102, EffectKind.TIMEOUT) is None


async def test_outbox_gives_up_after_many_attempts(backend: Backend) -> None:
    cases, outbox = backend.moderation, backend.outbox
    ban = await cases.open_case(G, "ban", 100, MOD_A, "raid")
    now = T0
    for _ in range(MAX_ATTEMPTS):
        assert len(await outbox.claim([G], now, timedelta(seconds=1))) == 1
        now += timedelta(seconds=2)
    assert await outbox.claim([G], now, timedelta(seconds=1)) == []
    gave_up = await cases.get_case(G, ban.number)
    assert (gave_up.action_state, gave_up.state, gave_up.pending) == (
        ActionState.FAILED,
        CaseState.EXPIRED,
        False,
    )
    assert "gave up" in gave_up.action_note
    assert await cases.live_effect(G, 100, EffectKind.BAN) is None


async def test_pardon_and_reason_take_keys(backend: Backend) -> None:
    cases = backend.moderation
    case = await cases.open_case(G, "warn", 100, MOD_A, "spam")
    first = await cases.pardon(G, case.number, MOD_A, "appealed", key="pardon:1")
    again = await cases.pardon(G, case.number, MOD_A, "appealed", key="pardon:1")
    assert (first.replayed, again.replayed, again.state) == (False, True, CaseState.PARDONED)
    with pytest.raises(CaseStateError):
        await cases.pardon(G, case.number, MOD_A, "appealed", key="pardon:2")
    edited = await cases.edit_reason(G, case.number, MOD_B, "spam!", key="reason:1")
    assert (await cases.edit_reason(G, case.number, MOD_B, "spam!", key="reason:1")).replayed
    assert edited.reason == "spam!"
    other = await cases.open_case(G, "warn", 100, MOD_A, "more")
    with pytest.raises(IdempotencyConflict):  # the same request id for another case
        await cases.edit_reason(G, other.number, MOD_B, "spam!", key="reason:1")


async def test_repeated_key_returns_the_first_case(backend: Backend) -> None:
    first = await backend.moderation.open_case(G, "warn", 100, MOD_A, "spam", key="case:1")
    again = await backend.moderation.open_case(G, "warn", 100, MOD_A, "spam", key="case:1")
    assert (again.number, again.replayed, first.replayed) == (first.number, True, False)
    assert [c.number for c in (await backend.moderation.history(G, limit=10)).cases] == [1]
    with pytest.raises(IdempotencyConflict):  # the same request id for another member
        await backend.moderation.open_case(G, "warn", 101, MOD_A, "spam", key="case:1")


async def test_dm_delivery_is_recorded(backend: Backend) -> None:
    case = await backend.moderation.open_case(G, "kick", 100, MOD_A, "", notify=True)
    assert case.dm_delivered is None and case.dm_state == DmState.PENDING
    assert await backend.outbox.start_dm(G, case.number)
    await backend.outbox.settle(G, case.number, dm=DmState.UNDELIVERED)
    assert (await backend.moderation.get_case(G, case.number)).dm_delivered is False
