"""The bank's PostgreSQL functions against its model code: same inputs, same rows."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from tortoise import connections

from app.db.postgres import asyncpg_dsn
from app.domain.economy import Bank
from app.domain.errors import DomainError
from app.ops import deadline as deadlines
from app.ops.deadline import Deadline, DeadlineExceeded
from tests.conftest import Backend

FUNCTIONS, MODELS = 555555555555555555, 666666666666666666
ADMIN = 9
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)

#: Every outcome of both functions, in an order where each step depends on the ones before.
SCRIPT: list[Callable[[Bank, int], Awaitable[Any]]] = [
    lambda b, g: b.grant(g, ADMIN, 1, 500, key=f"{g}:g1", reason="prize"),
    lambda b, g: b.grant(g, ADMIN, 1, 500, key=f"{g}:g1", reason="prize"),  # replayed
    lambda b, g: b.grant(g, ADMIN, 1, 501, key=f"{g}:g1"),  # a key reused: conflict
    lambda b, g: b.daily(g, 2, key=f"{g}:d1", now=T0),
    lambda b, g: b.daily(g, 2, key=f"{g}:d2", now=T0 + timedelta(hours=23)),  # not ready
    lambda b, g: b.daily(g, 2, key=f"{g}:d3", now=T0 + timedelta(hours=24)),
    lambda b, g: b.fine(g, ADMIN, 1, 50, "spam", key=f"{g}:f1"),
    lambda b, g: b.fine(g, ADMIN, 1, 10_000, "too much", key=f"{g}:f2"),  # insufficient
    lambda b, g: b.fine(g, ADMIN, 77, 1, "never seen", key=f"{g}:f3"),  # no row: insufficient
    lambda b, g: b.transfer(g, 1, 3, 120, f"{g}:t1"),  # a recipient never seen
    lambda b, g: b.transfer(g, 1, 3, 120, f"{g}:t1"),  # replayed
    lambda b, g: b.transfer(g, 1, 2, 121, f"{g}:t1"),  # a key reused: conflict
    lambda b, g: b.transfer(g, 2, 1, 10_000, f"{g}:t2"),  # refused, remembered
    lambda b, g: b.grant(g, ADMIN, 2, 20_000, key=f"{g}:g2"),
    lambda b, g: b.transfer(g, 2, 1, 10_000, f"{g}:t2"),  # refused again, as first answered
    lambda b, g: b.transfer(g, 88, 1, 1, f"{g}:t3"),  # a sender never seen
    lambda b, g: b.transfer(g, 3, 2, 120, f"{g}:t4"),  # leaves 3 with nothing
]


def outcome(result: Any, guild_id: int) -> object:
    """A receipt, or the error's type and message, with the guild's id taken out."""
    if isinstance(result, DomainError):
        return type(result).__name__, str(result).replace(str(guild_id), "G")
    return result


async def rows(guild_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """The guild's accounts, ledger and refusals, without ids, times and the guild's id."""
    conn = connections.get("default")
    queries = {
        "members": "SELECT user_id, display_name, coins, xp, level, version, last_daily_at"
        " FROM members WHERE guild_id = $1 ORDER BY user_id",
        "ledger": "SELECT user_id, kind, amount, balance_after, actor_id, counterparty_id,"
        " reason, replace(idempotency_key, $2, 'G') FROM ledger WHERE guild_id = $1"
        " ORDER BY id",
        "refusals": "SELECT replace(idempotency_key, $2, 'G'), balance, needed"
        " FROM refusals WHERE guild_id = $1 ORDER BY idempotency_key",
    }
    found = {}
    for name, sql in queries.items():
        values = [guild_id, str(guild_id)] if "$2" in sql else [guild_id]
        _, got = await conn.execute_query(sql, values)
        found[name] = [tuple(r.values()) for r in got]
    return found


async def test_functions_and_model_code_write_the_same_rows(pg: Backend) -> None:
    banks = {
        FUNCTIONS: Bank(pg.coord, pg.guilds, 1_000_000, 1_000_000_000, functions=True),
        MODELS: Bank(pg.coord, pg.guilds, 1_000_000, 1_000_000_000, functions=False),
    }
    answers: dict[int, list[object]] = {g: [] for g in banks}
    for step in SCRIPT:
        for guild_id, bank in banks.items():
            try:
                result: Any = await step(bank, guild_id)
            except DomainError as error:
                result = error
            answers[guild_id].append(outcome(result, guild_id))
    assert answers[FUNCTIONS] == answers[MODELS]
    kinds = {type(a) for a in answers[FUNCTIONS]}
    assert len(kinds) > 2  # receipts of both kinds and refusals
    ours, theirs = await rows(FUNCTIONS), await rows(MODELS)
    assert ours == theirs
    assert len(ours["ledger"]) == 9 and len(ours["refusals"]) == 2


async def test_a_held_row_lock_ends_at_the_deadline_with_nothing_written(pg: Backend) -> None:
    bank = Bank(pg.coord, pg.guilds, 1_000_000, 1_000_000_000, functions=True)
    await bank.grant(FUNCTIONS, ADMIN, 1, 100)
    holder = await asyncpg.connect(asyncpg_dsn(pg.db_url))
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM members WHERE guild_id = $1 AND user_id = 1 FOR UPDATE", FUNCTIONS
            )
            now = time.time()
            deadline = Deadline("prefix", now, now, 60.0, 0.0, timeout=0.5)
            started = time.monotonic()
            with deadlines.applying(deadline), pytest.raises(DeadlineExceeded):
                await bank.transfer(FUNCTIONS, 1, 2, 10, "held")
            waited = time.monotonic() - started
    finally:
        await holder.close()
    assert waited < 2.0
    assert len((await rows(FUNCTIONS))["ledger"]) == 1
    assert await bank.balance(FUNCTIONS, 1) == 100
