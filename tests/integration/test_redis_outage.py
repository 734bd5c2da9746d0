"""Redis going away mid-run: money stays correct, the leaderboard falls back, then heals."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as redis

from app.coord import Coordination
from app.db.models import Member
from app.domain.economy import Bank
from app.domain.errors import InsufficientFunds
from app.domain.leaderboard import Leaderboard
from tests.conftest import Backend
from tests.ledger_checks import assert_ledger_replays
from tests.services import private_redis, wait_for

G = 555555555555555555
USERS = list(range(1, 13))

pytestmark = pytest.mark.slow


class TransferLoad:
    """Concurrent random transfers until stopped; counts what was done."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        self.done = 0
        self.errors: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, tasks: int = 8) -> None:
        self._tasks = [asyncio.create_task(self._run(seed)) for seed in range(tasks)]

    async def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        i = 0
        while not self._stop.is_set():
            a, b = rng.sample(USERS, 2)
            i += 1
            try:
                await self.bank.transfer(G, a, b, rng.randint(1, 30), f"load:{seed}:{i}")
                self.done += 1
            except InsufficientFunds:
                pass
            except Exception as error:  # anything else is a failure of the test
                self.errors.append(error)
                return

    async def reach(self, count: int) -> None:
        target = self.done + count
        await wait_for(lambda: self.done >= target or bool(self.errors), within=30)
        assert not self.errors, self.errors

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        assert not self.errors, self.errors


async def db_ranking() -> list[tuple[int, int]]:
    return (
        await Member.filter(guild_id=G)
        .order_by("-coins", "user_id")
        .values_list("user_id", "coins")
    )


async def funded_bank(url: str) -> tuple[Coordination, Bank, Leaderboard]:
    """A bank on this Redis, every user funded, the leaderboard cache built."""
    coord = Coordination.from_redis(url)
    bank = Bank(coord, transfer_max=1_000, grant_max=10_000)
    board = Leaderboard(coord.leaderboard)
    for user in USERS:
        await bank.grant(G, 99, user, 200)
    assert await board.refresh_soon(G)
    return coord, bank, board


async def test_redis_stopped_mid_run(pg: Backend) -> None:
    async with private_redis() as server:
        coord, bank, board = await funded_bank(server.url)
        load = TransferLoad(bank)
        load.start()
        try:
            await load.reach(100)
            await server.stop()
            await load.reach(150)  # transfers go on without Redis
        finally:
            await load.stop()
        page = await board.page(G, 1, per_page=25)
        assert page.source == "database"
        assert [(e.user_id, e.coins) for e in page.entries] == await db_ranking()

        await server.start()  # an empty Redis: the cache must be rebuilt from PostgreSQL
        load = TransferLoad(bank)
        load.start()
        try:
            await load.reach(100)
        finally:
            await load.stop()
        await wait_for(lambda: _cached_equals_db(board), within=15)
        await coord.close()
    assert sum(c for _, c in await db_ranking()) == 200 * len(USERS)
    await assert_ledger_replays(G)


async def test_redis_unreachable_then_back_with_stale_data(pg: Backend) -> None:
    async with private_redis() as server:
        coord, bank, board = await funded_bank(server.url)
        admin = redis.Redis.from_url(server.url)
        await admin.execute_command("CLIENT", "PAUSE", 2500, "ALL")
        # While paused, write-throughs time out: the cache keeps old balances.
        receipt = await bank.transfer(G, 1, 2, 150, "stale-1")
        assert receipt.sender_balance == 50
        await wait_for(lambda: admin.ping(), within=10)  # the pause is over
        # The very first read after Redis is back must not serve the stale balances.
        page = await board.page(G, 1, per_page=25)
        assert [(e.user_id, e.coins) for e in page.entries] == await db_ranking()
        await wait_for(lambda: _cached_equals_db(board), within=20)
        await admin.aclose()
        await coord.close()


async def _cached_equals_db(board: Leaderboard) -> bool:
    page = await board.page(G, 1, per_page=25)
    if page.source != "cache":
        return False
    return [(e.user_id, e.coins) for e in page.entries] == await db_ranking()
