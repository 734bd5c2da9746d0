"""Every domain function refuses bad input with a typed error and writes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.models import Case, CaseEdit, GuildSettings, LedgerEntry, Member
from app.domain.errors import (
    CaseNotFound,
    CaseStateError,
    InvalidAmount,
    InvalidDuration,
    InvalidId,
    InvalidInput,
    InvalidReason,
    SelfTarget,
)
from app.domain.guilds import GuildConfigs
from tests.conftest import BANK_PATHS, Backend

G = 444444444444444444
MOD = 7
fixture_ok = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

bad_amounts = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=1_000_000_001, max_value=2**80),
    st.floats(allow_nan=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
)
overlong = st.text(min_size=1025, max_size=1500).filter(lambda s: len(s.strip()) > 1024)
blank = st.text(alphabet=" \t\n\u00a0\u2003", max_size=10)


async def counts() -> tuple[int, ...]:
    """Rows in every table."""
    return tuple([await m.all().count() for m in (Member, LedgerEntry, Case, CaseEdit)])


@BANK_PATHS
@fixture_ok
@given(amount=bad_amounts)
async def test_bad_amounts(backend: Backend, amount: object) -> None:
    before = await counts()
    for call in (
        lambda: backend.bank.transfer(G, 1, 2, amount, "tx-bad"),  # type: ignore[arg-type]  # wrong on purpose
        lambda: backend.bank.grant(G, MOD, 1, amount),  # type: ignore[arg-type]  # wrong on purpose
        lambda: backend.bank.fine(G, MOD, 1, amount, "reason"),  # type: ignore[arg-type]  # wrong on purpose
        lambda: backend.guilds.set_daily_amount(G, amount),  # type: ignore[arg-type]  # wrong on purpose
    ):
        with pytest.raises(InvalidAmount):
            await call()
    assert await counts() == before


@BANK_PATHS
@fixture_ok
@given(reason=st.one_of(overlong, blank))
async def test_bad_reasons(backend: Backend, reason: str) -> None:
    before = await counts()
    with pytest.raises(InvalidReason):
        await backend.moderation.open_case(G, "warn", 1, MOD, reason)
    with pytest.raises(InvalidReason):
        await backend.bank.fine(G, MOD, 1, 5, reason)
    assert await counts() == before


@fixture_ok
@given(reason=st.text(min_size=1, max_size=1024).filter(lambda s: s.strip() and "\x00" not in s))
async def test_any_unicode_reason_round_trips(backend: Backend, reason: str) -> None:
    case = await backend.moderation.open_case(G, "note", 1, MOD, reason)
    assert (await backend.moderation.get_case(G, case.number)).reason == reason.strip()


@pytest.mark.parametrize(
    ("action", "duration"),
    [
        ("timeout", None),
        ("timeout", timedelta(0)),
        ("timeout", timedelta(seconds=-5)),
        ("timeout", timedelta(days=28, seconds=1)),
        ("tempban", timedelta(days=3651)),
        ("warn", timedelta(hours=1)),
        ("kick", timedelta(hours=1)),
    ],
)
async def test_bad_durations(backend: Backend, action: str, duration: timedelta | None) -> None:
    with pytest.raises(InvalidDuration):
        await backend.moderation.open_case(G, action, 1, MOD, "reason", duration)
    assert await counts() == (0, 0, 0, 0)


async def test_other_case_refusals(backend: Backend) -> None:
    with pytest.raises(SelfTarget):
        await backend.moderation.open_case(G, "warn", MOD, MOD, "myself")
    with pytest.raises(InvalidInput):
        await backend.moderation.open_case(G, "obliterate", 1, MOD, "no such action")
    with pytest.raises(InvalidId):
        await backend.moderation.open_case(G, "warn", 0, MOD, "bad target")
    for number in (1, 2**40, 0, -3):
        with pytest.raises((CaseNotFound, InvalidId)):
            await backend.moderation.pardon(G, number, MOD, "sorry")
        with pytest.raises((CaseNotFound, InvalidId)):
            await backend.moderation.edit_reason(G, number, MOD, "new")
    assert await counts() == (0, 0, 0, 0)
    case = await backend.moderation.open_case(G, "warn", 1, MOD, "first")
    await backend.moderation.pardon(G, case.number, MOD, "mistake")
    with pytest.raises(CaseStateError):
        await backend.moderation.pardon(G, case.number, MOD, "again")
    assert await CaseEdit.all().count() == 1


BAD_SETTINGS: list[Callable[[GuildConfigs], Awaitable[object]]] = [
    lambda g: g.set_currency(G, ""),
    lambda g: g.set_currency(G, "x" * 33),
    lambda g: g.set_currency(G, "gold\x00"),
    lambda g: g.set_currency(G, "two\nlines"),
    lambda g: g.set_xp_range(G, -1, 20),
    lambda g: g.set_xp_range(G, 0, 10_001),
    lambda g: g.set_xp_range(G, 30, 20),
    lambda g: g.set_xp_range(G, True, 20),
    lambda g: g.set_modlog(G, -5),
    lambda g: g.set_levelup(G, channel_id=5, dm=True),
    lambda g: g.set_xp_excluded(G, "two", True),  # type: ignore[arg-type]  # wrong on purpose
]


@pytest.mark.parametrize("change", BAD_SETTINGS)
async def test_bad_settings(
    backend: Backend, change: Callable[[GuildConfigs], Awaitable[object]]
) -> None:
    with pytest.raises(InvalidInput):
        await change(backend.guilds)
    assert not await GuildSettings.filter(guild_id=G).exists()


@pytest.mark.parametrize("bad", [0, -1, 2**64, "123", Decimal(5)])
async def test_bad_ids_for_levels_and_cases(backend: Backend, bad: object) -> None:
    with pytest.raises(InvalidId):
        await backend.levels.award_message_xp(bad, 1, 1)  # type: ignore[arg-type]  # wrong on purpose
    with pytest.raises(InvalidId):
        await backend.moderation.history(G, bad)  # type: ignore[arg-type]  # wrong on purpose
    assert await counts() == (0, 0, 0, 0)
