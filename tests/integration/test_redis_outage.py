"""Redis going away mid-run: money stays correct, the leaderboard falls back, then heals."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
import redis.asyncio as redis

from app.coord import Coordination
from app.coord.leaderboard_cache import RedisLeaderboard, Standing
from app.coord.leases import RedisShardLeases
from app.coord.redis_link import RedisLink, RedisUnavailable
from app.db.models import Member
from app.domain.economy import Bank
from app.domain.errors import InsufficientFunds
from app.domain.leaderboard import Leaderboard
from app.services import Services
from tests.conftest import Backend
from tests.ledger_checks import assert_ledger_replays
from tests.services import private_redis
from testsupport.waiting import wait_for

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
    """The guild's ranking from PostgreSQL; members with no coins are left out, as pages do."""
    return (
        await Member.filter(guild_id=G, coins__gt=0)
        .order_by("-coins", "user_id")
        .values_list("user_id", "coins")
    )


async def funded_bank(url: str) -> tuple[Coordination, Bank, Leaderboard]:
    """A bank on this Redis, every user funded, the leaderboard cache built."""
    coord = Coordination.from_redis(url)
    services = Services(coord, transfer_max=1_000, grant_max=10_000)
    bank, board = services.bank, services.leaderboard
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


async def test_an_outage_is_logged_once_and_the_return_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not "unavailable" / "back" alternately at every breaker retry; and the guilds written
    while Redis was away stay marked until their cache markers could really be dropped."""
    caplog.set_level(logging.INFO, logger="app.coord")
    async with private_redis() as server:
        link = RedisLink(server.url, cooldown=0.02, timeout=0.5)
        cache = RedisLeaderboard(link)
        await link.run(lambda r: r.set(cache.keys(G)[2], "1"))
        await server.stop()
        tries = 0
        while tries < 20:
            await wait_for(lambda: link.usable, within=5)
            tries += 1
            if tries == 10:
                await cache.record(G, [Standing(1, 10, 1)])  # a write-through lost
                continue
            with pytest.raises(RedisUnavailable):
                await link.run(lambda r: r.ping())
        await server.start()
        await wait_for(lambda: link.usable, within=5)
        assert await link.run(lambda r: r.exists(cache.keys(G)[2])) == 0, "stale cache served"
        await link.run(lambda r: r.ping())
        await link.close()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("app.coord")]
    assert [m for m in said if "unavailable" in m] == [m for m in said[:1]], said
    assert said[0].startswith("redis unavailable, falling back")
    assert len([m for m in said if m.startswith("redis is back after")]) == 1, said
    assert len([m for m in said if "dropped the leaderboard cache of 1 guild" in m]) == 1, said


async def test_an_unreachable_redis_is_not_a_lease_held_elsewhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.coord")
    async with private_redis() as server:
        link = RedisLink(server.url, cooldown=0.02, timeout=0.5)
        await server.stop()
        leases = RedisShardLeases(link, "pod-a", ttl=1.0)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2):
                await leases.acquire(0, wait=1)
        await link.close()
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "held by another process" in m], said
    assert [m for m in said if "redis unavailable" in m], said
