"""The bank on both backends: PostgreSQL + Redis, and the embedded SQLite + in-process default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db.models import LedgerEntry, Member
from app.domain.errors import (
    DailyNotReady,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidId,
    ProfileNotFound,
    SelfTarget,
)
from app.domain.types import LedgerKind
from tests.conftest import BANK_PATHS, Backend
from tests.ledger_checks import assert_ledger_replays

pytestmark = BANK_PATHS

G = 333333333333333333
ADMIN = 9


async def test_profile_is_created_on_first_sight(backend: Backend) -> None:
    member = await backend.bank.profile(G, 42, "Alice")
    assert (member.coins, member.xp, member.level, member.display_name) == (0, 0, 0, "Alice")
    again = await backend.bank.profile(G, 42, "Alice B")
    assert (again.user_id, again.display_name) == (42, "Alice B")
    assert await Member.filter(guild_id=G, user_id=42).count() == 1


async def test_grant_and_fine_write_the_ledger(backend: Backend) -> None:
    receipt = await backend.bank.grant(G, ADMIN, 1, 250, reason="event prize")
    assert (receipt.balance, receipt.kind) == (250, LedgerKind.GRANT)
    fine = await backend.bank.fine(G, ADMIN, 1, 50, "spam in #general")
    assert fine.balance == 200
    with pytest.raises(InsufficientFunds) as refused:
        await backend.bank.fine(G, ADMIN, 1, 201, "too much")
    assert refused.value.balance == 200
    entries = await LedgerEntry.filter(guild_id=G).order_by("id")
    assert [(e.kind, e.amount, e.balance_after, e.actor_id) for e in entries] == [
        (LedgerKind.GRANT, 250, 250, ADMIN),
        (LedgerKind.FINE, 50, 200, ADMIN),
    ]
    assert entries[1].reason == "spam in #general"


async def test_daily_once_per_24_hours(backend: Backend) -> None:
    await backend.guilds.set_daily_amount(G, 75)
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert (await backend.bank.daily(G, 5, now=t0)).balance == 75
    with pytest.raises(DailyNotReady) as early:
        await backend.bank.daily(G, 5, now=t0 + timedelta(hours=23, minutes=59))
    assert early.value.available_at == t0 + timedelta(hours=24)
    assert (await backend.bank.daily(G, 5, now=t0 + timedelta(hours=24))).balance == 150
    assert await LedgerEntry.filter(guild_id=G, kind="daily").count() == 2


async def test_daily_replays_by_key(backend: Backend) -> None:
    first = await backend.bank.daily(G, 5, key="daily-msg-1")
    again = await backend.bank.daily(G, 5, key="daily-msg-1")
    assert again.replayed and again.balance == first.balance == 100


async def test_transfer_moves_coins_once_per_key(backend: Backend) -> None:
    await backend.bank.grant(G, ADMIN, 1, 100)
    receipt = await backend.bank.transfer(G, 1, 2, 40, "tx-1")
    assert (receipt.sender_balance, receipt.recipient_balance, receipt.replayed) == (60, 40, False)
    replay = await backend.bank.transfer(G, 1, 2, 40, "tx-1")
    assert (replay.sender_balance, replay.recipient_balance, replay.replayed) == (60, 40, True)
    with pytest.raises(IdempotencyConflict):
        await backend.bank.transfer(G, 1, 2, 41, "tx-1")
    assert await backend.bank.balance(G, 1) == 60
    assert await backend.bank.balance(G, 2) == 40
    await assert_ledger_replays(G)


async def test_a_balance_read_opens_the_profile_of_a_member_never_seen(
    backend: Backend,
) -> None:
    assert not await Member.filter(guild_id=G, user_id=88).exists()
    assert await backend.bank.balance(G, 88) == 0
    assert await Member.filter(guild_id=G, user_id=88).count() == 1
    await backend.bank.grant(G, ADMIN, 88, 7)
    assert (await backend.bank.balance(G, 88), await backend.bank.balance(G + 1, 88)) == (7, 0)


async def test_transfer_refusals_write_nothing(backend: Backend) -> None:
    await backend.bank.grant(G, ADMIN, 1, 10)
    before = await LedgerEntry.all().count()
    with pytest.raises(InsufficientFunds):
        await backend.bank.transfer(G, 1, 3, 11, "tx-big")
    with pytest.raises(InsufficientFunds):
        await backend.bank.transfer(G, 77, 1, 1, "tx-nobody")  # a sender never seen has 0
    with pytest.raises(SelfTarget):
        await backend.bank.transfer(G, 1, 1, 1, "tx-self")
    with pytest.raises(InvalidAmount):
        await backend.bank.transfer(G, 1, 3, backend.bank.transfer_max + 1, "tx-max")
    assert await LedgerEntry.all().count() == before
    assert await backend.bank.balance(G, 1) == 10
    assert not await Member.filter(guild_id=G, user_id__in=[3, 77]).exists()


async def test_guilds_are_separate_accounts(backend: Backend) -> None:
    other = G + 1
    await backend.bank.grant(G, ADMIN, 1, 100)
    with pytest.raises(InsufficientFunds):
        await backend.bank.transfer(other, 1, 2, 1, "tx-cross")
    assert await backend.bank.balance(other, 1) == 0


async def test_leaderboard_and_rank(backend: Backend) -> None:
    for user, coins in [(10, 50), (11, 70), (12, 50), (13, 5)]:
        await backend.bank.grant(G, ADMIN, user, coins)
    first = await backend.leaderboard.page(G, 1, per_page=3)
    expected = [(1, 11, 70), (2, 10, 50), (3, 12, 50)]  # ties: lower user id first
    assert [(e.rank, e.user_id, e.coins) for e in first.entries] == expected
    await backend.leaderboard.refresh_soon(G)
    cached = await backend.leaderboard.page(G, 1, per_page=3)
    assert cached.source == "cache"
    assert [(e.rank, e.user_id, e.coins) for e in cached.entries] == expected
    await backend.bank.transfer(G, 11, 13, 60, "tx-lb")  # write-through: 13 -> 65, 11 -> 10
    second = await backend.leaderboard.page(G, 1, per_page=4)
    assert second.source == "cache"
    assert [(e.user_id, e.coins) for e in second.entries] == [
        (13, 65),
        (10, 50),
        (12, 50),
        (11, 10),
    ]
    assert await backend.leaderboard.rank(G, 12) == 3
    assert (await backend.leaderboard.page(G, 2, per_page=4)).entries == []
    with pytest.raises(ProfileNotFound):
        await backend.leaderboard.rank(G, 999)


async def test_a_page_carries_the_recorded_names_and_whether_another_follows(
    backend: Backend,
) -> None:
    """One read tells the page, the names of its members and whether a next page has anyone,
    from the database and from the cache alike."""
    for user, name in [(30, "Ada"), (31, "Grace"), (32, "")]:
        await backend.bank.profile(G, user, name)
        await backend.bank.grant(G, ADMIN, user, 100 - user)
    await backend.bank.profile(G, 33, "Holds nothing")
    for source in ("database", "cache"):
        first = await backend.leaderboard.page(G, 1, per_page=2)
        assert first.source == source
        assert [(e.user_id, e.name) for e in first.entries] == [(30, "Ada"), (31, "Grace")]
        assert first.has_next, source
        last = await backend.leaderboard.page(G, 2, per_page=2)
        assert [(e.user_id, e.name) for e in last.entries] == [(32, "")]
        assert not last.has_next, source  # 33 holds no coins: nobody is on page 3
        await backend.leaderboard.refresh_soon(G)
    await backend.bank.profile(G, 31, "Grace H.")  # a new name reaches the cache at once
    again = await backend.leaderboard.page(G, 1, per_page=2)
    assert again.source == "cache"
    assert [e.name for e in again.entries] == ["Ada", "Grace H."]


async def test_closing_stops_a_rebuild_in_flight(backend: Backend) -> None:
    """A rebuild left running would write a closed bot's cache (and leak into the next test)."""
    await backend.bank.grant(G, ADMIN, 20, 30)
    rebuild = backend.leaderboard.refresh_soon(G)
    await backend.leaderboard.close()
    assert rebuild.cancelled()
    assert await backend.coord.leaderboard.page(G, 0, 10) is None


async def test_members_without_coins_are_left_off_the_leaderboard(backend: Backend) -> None:
    await backend.bank.grant(G, ADMIN, 20, 30)
    await backend.bank.grant(G, ADMIN, 21, 10)
    await backend.bank.transfer(G, 21, 20, 10, "tx-empty")  # 21 is left with 0
    await backend.bank.profile(G, 22, "Never held any")
    for source in ("database", "cache"):
        page = await backend.leaderboard.page(G, 1, per_page=10)
        assert [(e.rank, e.user_id, e.coins) for e in page.entries] == [(1, 20, 40)], source
        await backend.leaderboard.refresh_soon(G)


async def test_display_names_are_the_last_recorded(backend: Backend) -> None:
    await backend.bank.profile(G, 30, "Thirty")
    await backend.bank.profile(G, 31)  # no name known
    await backend.levels.award_message_xp(G, 32, 1, display_name="Chatty")
    assert await backend.bank.display_names(G, [30, 31, 32, 33]) == {30: "Thirty", 32: "Chatty"}
    assert await backend.bank.display_names(G, []) == {}
    with pytest.raises(InvalidId):
        await backend.bank.display_names(G, [0])


@pytest.mark.parametrize("bad", [0, -1, -(2**63), 2**63, True, None, "5", 1.5])
async def test_bad_ids_are_refused(backend: Backend, bad: object) -> None:
    with pytest.raises(InvalidId):
        await backend.bank.transfer(bad, 1, 2, 5, "tx-bad-guild")  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(InvalidId):
        await backend.bank.grant(G, ADMIN, bad, 5)  # type: ignore[arg-type]  # wrong on purpose
    assert await LedgerEntry.all().count() == 0


async def test_a_refused_transfer_stays_refused_when_replayed(backend: Backend) -> None:
    await backend.bank.grant(G, ADMIN, 1, 5)
    with pytest.raises(InsufficientFunds):
        await backend.bank.transfer(G, 1, 2, 10, "tx-refused")
    await backend.bank.grant(G, ADMIN, 1, 100)  # the balance grows before the replay arrives
    with pytest.raises(InsufficientFunds) as again:
        await backend.bank.transfer(G, 1, 2, 10, "tx-refused")  # e.g. replayed after a RESUME
    assert (again.value.balance, again.value.needed) == (5, 10)  # the first answer, again
    assert await backend.bank.balance(G, 1) == 105
    assert not await LedgerEntry.filter(idempotency_key__startswith="tx-refused").exists()
    assert (await backend.bank.transfer(G, 1, 2, 10, "tx-fresh")).sender_balance == 95
