"""Money and case numbers under real concurrency: several OS processes on one PostgreSQL."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import pytest
from tortoise import connections

from app.db.models import LedgerEntry, Member
from tests import workers
from tests.conftest import Backend
from tests.ledger_checks import assert_ledger_replays

GUILD = 222222222222222222
PROCESSES = 4
TASKS_PER_PROCESS = 16
TRANSFERS_PER_PROCESS = 1_300

pytestmark = pytest.mark.slow
T = TypeVar("T")
#: The bank's two paths on PostgreSQL: its database functions, its model code.
PATHS = pytest.mark.parametrize("functions", [True, False], ids=["functions", "model-code"])


def _pool(n: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


async def _in_processes(n: int, fn: Callable[..., T], *argsets: tuple[Any, ...]) -> list[T]:
    """`fn(*args)` for each of `argsets`, in `n` worker processes."""
    loop = asyncio.get_running_loop()
    with _pool(n) as pool:
        return await asyncio.gather(*(loop.run_in_executor(pool, fn, *args) for args in argsets))


@PATHS
async def test_transfers_conserve_coins_across_processes(pg: Backend, functions: bool) -> None:
    users = list(range(1, 21))
    for user in users:
        await pg.bank.grant(GUILD, 99, user, 500)
    total_before = 20 * 500
    results = await _in_processes(
        PROCESSES,
        workers.random_transfers,
        *[
            (
                pg.db_url,
                pg.redis_url,
                GUILD,
                users,
                7,
                TRANSFERS_PER_PROCESS,
                TASKS_PER_PROCESS,
                seed,
                functions,
            )
            for seed in range(PROCESSES)
        ],
    )
    done = sum(r.get("done", 0) for r in results)
    refused = sum(r.get("insufficient", 0) for r in results)
    assert done + refused == PROCESSES * TRANSFERS_PER_PROCESS  # no other error reached a caller
    assert done > PROCESSES * TRANSFERS_PER_PROCESS // 2

    balances = dict(await Member.filter(guild_id=GUILD).values_list("user_id", "coins"))
    assert sum(balances.values()) == total_before
    assert min(balances.values()) >= 0
    assert await LedgerEntry.filter(guild_id=GUILD, kind="transfer_out").count() == done
    await assert_ledger_replays(GUILD)


@PATHS
@pytest.mark.parametrize("with_redis", [True, False], ids=["redis-locks", "no-redis-locks"])
async def test_same_key_from_two_processes_applies_once(
    pg: Backend, with_redis: bool, functions: bool
) -> None:
    await pg.bank.grant(GUILD, 99, 1, 100)
    manager = multiprocessing.get_context("spawn").Manager()
    try:
        barrier = manager.Barrier(2)
        redis_url = pg.redis_url if with_redis else None
        results = await _in_processes(
            2,
            workers.same_key_transfer,
            *[(pg.db_url, redis_url, GUILD, "same-key", barrier, functions) for _ in range(2)],
        )
    finally:
        manager.shutdown()
    replies = [reply for result in results for reply in result]
    assert len(replies) == 16
    assert {(s, r) for s, r, _ in replies} == {(75, 25)}  # every caller sees the first result
    assert sum(1 for *_, replayed in replies if not replayed) == 1
    assert await pg.bank.balance(GUILD, 1) == 75
    assert await pg.bank.balance(GUILD, 2) == 25
    assert await LedgerEntry.filter(idempotency_key__startswith="same-key").count() == 2


async def test_case_numbers_are_dense_across_processes(pg: Backend) -> None:
    other = GUILD + (1 << 22)
    await pg.moderation.open_case(other, "note", 5, 6, "first note elsewhere")
    results = await _in_processes(
        PROCESSES,
        workers.open_cases,
        *[(pg.db_url, GUILD, 50, 8, seed) for seed in range(PROCESSES)],
    )
    numbers = sorted(n for result in results for n in result)
    assert numbers == list(range(1, 201))
    stored = await connections.get("default").execute_query_dict(
        "SELECT number FROM cases WHERE guild_id = $1 ORDER BY number", [GUILD]
    )
    assert [row["number"] for row in stored] == list(range(1, 201))
    # The other guild's numbering is its own, and queries never cross guilds.
    assert (await pg.moderation.open_case(other, "note", 5, 6, "second note")).number == 2
    page = await pg.moderation.history(other, limit=50)
    assert [c.number for c in page.cases] == [2, 1]
    assert all(c.guild_id == other for c in page.cases)
    assert all(c.guild_id == GUILD for c in (await pg.moderation.history(GUILD, limit=50)).cases)
