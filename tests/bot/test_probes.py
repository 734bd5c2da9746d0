"""/readyz and /metrics tell the truth: a pod that serves none of its shards is not ready, and
says why; a Redis that is not configured is not reported up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox import SandboxServer
from tests.bot.cluster import pod
from tests.bot.world import community_world
from tests.conftest import Backend
from tests.services import private_redis
from testsupport.processes import BotProcess
from testsupport.waiting import wait_for

pytestmark = pytest.mark.slow

SHARDS = 2


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    world = community_world([(s, SHARDS) for s in range(SHARDS)], members=2)
    server = SandboxServer(world=world, identify_window=0.1)
    await server.start()
    yield server
    await server.stop()


async def gauges(proc: BotProcess) -> dict[str, float | None]:
    """Each unlabelled gauge of the pod's /metrics: its value, or None when it has no series."""
    answer = await proc.http("/metrics")
    assert answer is not None and answer[0] == 200
    families = text_string_to_metric_families(answer[1])
    return {f.name: (f.samples[0].value if f.samples else None) for f in families}


async def answers(proc: BotProcess, path: str, status: int) -> str | None:
    """The body of `path` when it answers with `status` (None otherwise)."""
    answer = await proc.http(path)
    return answer[1] if answer is not None and answer[0] == status else None


async def test_readyz_is_503_while_a_redis_outage_stops_every_shard(
    sandbox: SandboxServer, pg: Backend, tmp_path: Path
) -> None:
    async with private_redis() as redis:
        env = {"SHARD_COUNT": str(SHARDS), "LEASE_TTL_S": "2"}
        bot = pod("live", sandbox, pg.db_url, redis.url, tmp_path, **env)
        await bot.start()
        try:
            await bot.wait_ready(within=60)
            before = await gauges(bot)
            assert (before["guildbot_owned_shards"], before["guildbot_redis_up"]) == (SHARDS, 1)

            await redis.stop()  # the leases cannot be renewed: the pod stops both shards
            body = await wait_for(lambda: answers(bot, "/readyz", 503), within=30)
            assert body.startswith(f"not ready: 0 of {SHARDS} shard(s) serving, not [0, 1]"), body
            assert "redis unreachable for" in body
            during = await gauges(bot)
            assert during["guildbot_owned_shards"] == 0
            assert (during["guildbot_ready"], during["guildbot_redis_up"]) == (0, 0)

            await redis.start()  # empty: one lease TTL passes before leases are granted again
            await wait_for(lambda: answers(bot, "/readyz", 200), within=60)
            assert (await gauges(bot))["guildbot_owned_shards"] == SHARDS
        finally:
            await bot.stop()


async def test_no_redis_is_no_redis_up_series(
    sandbox: SandboxServer, pg: Backend, tmp_path: Path
) -> None:
    bot = BotProcess.guildbot(
        "alone", sandbox, tmp_path, DATABASE_URL=pg.db_url, SHARD_COUNT=str(SHARDS)
    )
    await bot.start()
    try:
        await bot.wait_ready(within=60)
        seen = await gauges(bot)
        assert "guildbot_redis_up" in seen and seen["guildbot_redis_up"] is None
        assert (seen["guildbot_ready"], seen["guildbot_owned_shards"]) == (1, SHARDS)
    finally:
        await bot.stop()
