"""Cases: numbering, history filters and keyset pages, edits, pardons, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.models import CaseState
from app.domain import moderation
from tests.conftest import Backend

G = 666666666666666666
MOD_A, MOD_B = 7, 8
T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def test_history_filters_and_pages(backend: Backend) -> None:
    for i in range(25):
        action = ("warn", "note", "kick")[i % 3]
        await moderation.open_case(
            G, action, 100 + i % 2, (MOD_A, MOD_B)[i % 2], f"r{i}", now=T0 + timedelta(hours=i)
        )
    await moderation.open_case(G + 1, "warn", 100, MOD_A, "other guild")
    seen: list[int] = []
    before = None
    while True:
        page = await moderation.history(G, 100, before=before, limit=4)
        seen += [c.number for c in page.cases]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == list(range(25, 0, -2))  # member 100 got the odd numbers, newest first
    warns = await moderation.history(G, action="warn", limit=50)
    assert [c.number for c in warns.cases] == list(range(25, 0, -3))
    by_b = await moderation.history(G, moderator_id=MOD_B, limit=50)
    assert {c.moderator_id for c in by_b.cases} == {MOD_B} and len(by_b.cases) == 12
    recent = await moderation.history(G, since=T0 + timedelta(hours=20), limit=50)
    assert [c.number for c in recent.cases] == [25, 24, 23, 22, 21]
    exported = [c.number async for c in moderation.export(G, chunk=7)]
    assert exported == list(range(1, 26))


async def test_reason_edits_and_pardon_are_recorded(backend: Backend) -> None:
    case = await moderation.open_case(G, "warn", 100, MOD_A, "spam")
    await moderation.edit_reason(G, case.number, MOD_B, "spam in #general")
    pardoned = await moderation.pardon(G, case.number, MOD_A, "appealed")
    assert pardoned.state == CaseState.PARDONED
    fetched = await moderation.get_case(G, case.number)
    assert (fetched.reason, fetched.state) == ("spam in #general", CaseState.PARDONED)
    trail = [
        (e.editor_id, e.field, e.old_value, e.new_value, e.note)
        for e in await moderation.edits(fetched)
    ]
    assert trail == [
        (MOD_B, "reason", "spam", "spam in #general", ""),
        (MOD_A, "state", "active", "pardoned", "appealed"),
    ]


async def test_expiry_and_supersession(backend: Backend) -> None:
    ban = await moderation.open_case(G, "tempban", 100, MOD_A, "raid", timedelta(hours=1), now=T0)
    timeout = await moderation.open_case(
        G + 1, "timeout", 5, MOD_A, "", timedelta(minutes=10), now=T0
    )
    assert await moderation.next_expiry([G]) == T0 + timedelta(hours=1)
    assert await moderation.due(T0 + timedelta(minutes=9)) == []
    due = await moderation.due(T0 + timedelta(hours=2))
    assert [c.id for c in due] == [timeout.id, ban.id]
    assert [c.id for c in await moderation.due(T0 + timedelta(hours=2), [G])] == [ban.id]
    assert await moderation.expire(ban.id)
    assert not await moderation.expire(ban.id)  # a second process finds nothing left to do

    # A newer timeout ends the older one, so the older one can never lift it early.
    newer = await moderation.open_case(G + 1, "timeout", 5, MOD_B, "", timedelta(days=1), now=T0)
    assert (await moderation.get_case(G + 1, timeout.number)).state == CaseState.EXPIRED
    assert [c.id for c in await moderation.due(T0 + timedelta(hours=2))] == []
    assert (await moderation.get_case(G + 1, newer.number)).state == CaseState.ACTIVE


async def test_repeated_key_returns_the_first_case(backend: Backend) -> None:
    first = await moderation.open_case(G, "warn", 100, MOD_A, "spam", key="msg:1")
    again = await moderation.open_case(G, "warn", 100, MOD_A, "spam", key="msg:1")
    assert again.id == first.id
    assert [c.id for c in (await moderation.history(G, limit=10)).cases] == [first.id]


async def test_dm_delivery_is_recorded(backend: Backend) -> None:
    case = await moderation.open_case(G, "kick", 100, MOD_A, "")
    assert case.dm_delivered is None
    await moderation.record_dm(case, False)
    assert (await moderation.get_case(G, case.number)).dm_delivered is False
