"""Every domain function refuses bad input with a typed error and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.models import Case, CaseEdit, GuildSettings, LedgerEntry, Member
from app.domain import guilds, levels, moderation
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
from tests.conftest import Backend

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


@fixture_ok
@given(amount=bad_amounts)
async def test_bad_amounts(backend: Backend, amount: object) -> None:
    before = await counts()
    for call in (
        lambda: backend.bank.transfer(G, 1, 2, amount, "tx-bad"),  # type: ignore[arg-type]
        lambda: backend.bank.grant(G, MOD, 1, amount),  # type: ignore[arg-type]
        lambda: backend.bank.fine(G, MOD, 1, amount, "reason"),  # type: ignore[arg-type]
        lambda: guilds.configure(G, daily_amount=amount),
    ):
        with pytest.raises(InvalidAmount):
            await call()
    assert await counts() == before


@fixture_ok
@given(reason=st.one_of(overlong, blank))
async def test_bad_reasons(backend: Backend, reason: str) -> None:
    before = await counts()
    with pytest.raises(InvalidReason):
        await moderation.open_case(G, "warn", 1, MOD, reason)
    with pytest.raises(InvalidReason):
        await backend.bank.fine(G, MOD, 1, 5, reason)
    assert await counts() == before


@fixture_ok
@given(reason=st.text(min_size=1, max_size=1024).filter(lambda s: s.strip() and "\x00" not in s))
async def test_any_unicode_reason_round_trips(backend: Backend, reason: str) -> None:
    case = await moderation.open_case(G, "note", 1, MOD, reason)
    assert (await moderation.get_case(G, case.number)).reason == reason.strip()


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
        await moderation.open_case(G, action, 1, MOD, "reason", duration)
    assert await counts() == (0, 0, 0, 0)


async def test_other_case_refusals(backend: Backend) -> None:
    with pytest.raises(SelfTarget):
        await moderation.open_case(G, "warn", MOD, MOD, "myself")
    with pytest.raises(InvalidInput):
        await moderation.open_case(G, "obliterate", 1, MOD, "no such action")
    with pytest.raises(InvalidId):
        await moderation.open_case(G, "warn", 0, MOD, "bad target")
    for number in (1, 2**40, 0, -3):
        with pytest.raises((CaseNotFound, InvalidId)):
            await moderation.pardon(G, number, MOD, "sorry")
        with pytest.raises((CaseNotFound, InvalidId)):
            await moderation.edit_reason(G, number, MOD, "new")
    assert await counts() == (0, 0, 0, 0)
    case = await moderation.open_case(G, "warn", 1, MOD, "first")
    await moderation.pardon(G, case.number, MOD, "mistake")
    with pytest.raises(CaseStateError):
        await moderation.pardon(G, case.number, MOD, "again")
    assert await CaseEdit.all().count() == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"currency_name": ""},
        {"currency_name": "x" * 33},
        {"currency_name": "gold\x00"},
        {"currency_name": "two\nlines"},
        {"xp_min": -1},
        {"xp_max": 10_001},
        {"xp_min": 30, "xp_max": 20},
        {"modlog_channel_id": -5},
        {"levelup_dm": "yes"},
        {"no_xp_channel_ids": [1, "two"]},
        {"colour": "red"},
    ],
)
async def test_bad_settings(backend: Backend, changes: dict) -> None:
    with pytest.raises(InvalidInput):
        await guilds.configure(G, **changes)
    assert not await GuildSettings.filter(guild_id=G).exists()


@pytest.mark.parametrize("bad", [0, -1, 2**64, "123", Decimal(5)])
async def test_bad_ids_for_levels_and_cases(backend: Backend, bad: object) -> None:
    with pytest.raises(InvalidId):
        await levels.award_message_xp(bad, 1, 1, backend.coord.cooldowns)  # type: ignore[arg-type]
    with pytest.raises(InvalidId):
        await moderation.history(G, bad)  # type: ignore[arg-type]
    assert await counts() == (0, 0, 0, 0)
