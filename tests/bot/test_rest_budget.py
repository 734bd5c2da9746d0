"""One REST budget for three bot processes, against a sandbox that enforces Discord's limits.

The sandbox allows 20 requests/s for the token (across every connection) and Discord-like route
buckets; the pods are told REST_GLOBAL_LIMIT=20. A burst of prefix commands over many channels
needs several times that.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.coord.leases import EPOCH_KEY
from sandbox import InteractionHandle, SandboxServer, build_world
from sandbox.rate_ledger import GLOBAL_COUNTED, INVALID, RateStats
from sandbox.ratelimits import DISCORD_ROUTE_LIMITS
from tests.bot.cluster import Cluster, publish
from tests.conftest import Backend
from tests.services import private_redis
from testsupport.servers import PrivateRedis
from testsupport.waiting import wait_for

pytestmark = pytest.mark.slow

MESSAGES = "/channels/{channel_id}/messages"
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
LIMIT = 20
PODS = 3
POD_ENV = {
    "SHARD_COUNT": str(PODS),
    "SHARDS_PER_POD": "1",
    "REST_GLOBAL_LIMIT": str(LIMIT),
    # Leases outlive the Redis outage (a pod gives its shards up after two thirds of the TTL).
    "LEASE_TTL_S": "60",
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="module")
async def sandbox(pg_url: str) -> AsyncIterator[SandboxServer]:
    world = build_world(PODS, 14, 3, 6, seed=3, shard_count=PODS)
    server = SandboxServer(
        world=world, global_limit=LIMIT, route_limits=DISCORD_ROUTE_LIMITS, identify_window=0.1
    )
    await server.start()
    await publish(server, pg_url)
    yield server
    await server.stop()


def database(url: str) -> Backend:
    """The pods' database, as Cluster takes it (its tables are not emptied between tests)."""
    return Backend("postgres", url, None)


@asynccontextmanager
async def fresh_redis() -> AsyncIterator[PrivateRedis]:
    """A Redis of one cluster's own, its data old enough that leases are granted at once."""
    async with private_redis() as server:
        client = aioredis.Redis.from_url(server.url)
        seconds, _ = await client.time()
        await client.set(EPOCH_KEY, (seconds - 600) * 1000)
        await client.aclose()
        yield server


@pytest.fixture(scope="module")
async def redis() -> AsyncIterator[PrivateRedis]:
    """The Redis of the pods that share the budget."""
    async with fresh_redis() as server:
        yield server


@pytest.fixture(scope="module")
async def shared(
    sandbox: SandboxServer,
    pg_url: str,
    redis: PrivateRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    """Three pods sharing one budget, for every test after the baseline."""
    workdir = tmp_path_factory.mktemp("shared")
    cluster = Cluster(sandbox, database(pg_url), redis.url, workdir, **POD_ENV)
    try:
        await start(cluster)
        yield cluster
    finally:
        await cluster.close()


async def start(cluster: Cluster) -> None:
    await cluster.start(*range(PODS))
    await cluster.wait_ready(within=60)


async def burst(server: SandboxServer, count: int) -> int:
    """`count` prefix commands spread over every text channel of every guild; returns `count`."""
    world = server.world
    places = [
        (guild.id, channel.id, next(m.id for m in guild.members.values() if not m.user.bot))
        for guild in world.guilds.values()
        for channel in world.text_channels(guild)
    ]
    for guild, channel, author in itertools.islice(itertools.cycle(places), count):
        await server.driver.send_message(guild, channel, author, "!help")
    return count


async def slash(server: SandboxServer, name: str) -> InteractionHandle:
    """Run `/name` as a member of the first guild, in its first text channel."""
    guild = next(iter(server.world.guilds.values()))
    channel = next(iter(server.world.text_channels(guild)))
    member = next(m for m in guild.members.values() if not m.user.bot)
    return await server.driver.slash(guild.id, channel.id, member.id, name)


async def answered(server: SandboxServer, count: int, since: float, within: float) -> None:
    """Wait until the bot posted `count` answers (in the channel, or by DM) since `since`."""

    def posted() -> bool:
        calls = server.driver.rest_calls("POST", MESSAGES, status=200)
        return sum(1 for c in calls if c.time >= since) >= count

    await wait_for(posted, within=within, interval=0.2)


def assert_within_limits(stats: RateStats) -> None:
    busiest = stats.busiest
    assert busiest is not None and busiest.get(GLOBAL_COUNTED) <= LIMIT, busiest
    assert stats.total("429_global") == 0
    assert stats.total("429_user") == 0
    assert stats.total(INVALID) == 0


async def test_without_the_budget_three_pods_draw_global_429s(
    sandbox: SandboxServer, pg_url: str, tmp_path: Path
) -> None:
    """The baseline, first: its pods are gone before the shared ones start (one session per
    shard), and have their own Redis (no leases to wait out)."""
    async with fresh_redis() as own:
        db = database(pg_url)
        baseline = Cluster(sandbox, db, own.url, tmp_path, **POD_ENV, REST_BUDGET="false")
        try:
            await start(baseline)
            since = time.time()
            await burst(sandbox, 90)
            await wait_for(lambda: sandbox.driver.rate_stats(since).total("429_global"), within=20)
        finally:
            await baseline.close()


async def test_three_pods_keep_one_budget_and_retry_a_proxys_own_429(
    sandbox: SandboxServer, shared: Cluster
) -> None:
    since = time.time()
    await answered(sandbox, await burst(sandbox, 90), since, within=40)
    # A REST proxy's own 429 (no Via) is waited out and retried, not raised: a message...
    sandbox.rate_limit_next(f"POST {MESSAGES}", retry_after=0.5, proxy=True)
    await answered(sandbox, 90 + await burst(sandbox, 1), since, within=10)
    # ... and an interaction response, sent by discord.py's webhook adapter.
    sandbox.rate_limit_next(f"POST {CALLBACK}", retry_after=0.5, proxy=True)
    reply = await (await slash(sandbox, "balance")).wait_response(timeout=10)
    assert reply.content == "You hold 0 coins."
    callbacks = sandbox.driver.rest_calls("POST", CALLBACK)
    assert [c.status for c in callbacks if c.time >= since][-2:] == [429, 200]
    stats = sandbox.driver.rate_stats(since)
    assert_within_limits(stats)
    assert stats.total("429_proxy") == 2


@contextmanager
def paused(server: PrivateRedis) -> Iterator[None]:
    """Redis stops answering (SIGSTOP: connections stay open, commands time out), then goes on."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_without_redis_each_pod_keeps_its_share_then_the_shared_budget_resumes(
    sandbox: SandboxServer, redis: PrivateRedis, shared: Cluster
) -> None:
    since = time.time()
    sent = await burst(sandbox, 30)
    with paused(redis):
        await wait_for(lambda: limiting_alone(shared, True), within=20)
        sent += await burst(sandbox, 30)
        await answered(sandbox, sent, since, within=30)
    await wait_for(lambda: limiting_alone(shared, False), within=20)
    sent += await burst(sandbox, 30)
    await answered(sandbox, sent, since, within=30)
    assert_within_limits(sandbox.driver.rate_stats(since))


async def limiting_alone(cluster: Cluster, alone: bool) -> bool:
    """Every pod reports that it limits alone (or, `alone` False, that none does)."""
    line = f"guildbot_rest_local_limiting {float(alone)}"
    for index in cluster.pods:
        body = await cluster.http(index, "/metrics")
        if body is None or line not in body:
            return False
    return True
