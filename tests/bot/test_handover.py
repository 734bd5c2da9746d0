"""A shard's guild state follows it to its next owner without a REST storm (app/bot/handover.py).

Two bot processes share a sandbox, PostgreSQL and Redis. With HANDOVER_MODE=snapshot the new
owner answers in the moved shard's guilds having made no guild REST call and no identify; a
snapshot that does not belong to the saved session is not used, and its shard's guilds are
then loaded over REST before the RESUME (as `eager`), each exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from sandbox import SandboxServer
from sandbox.world import Guild
from tests.bot.cluster import Cluster, publish
from tests.bot.world import community_world
from tests.conftest import Backend
from testsupport.keys import delete_keys
from testsupport.rest_calls import guild_state_calls
from testsupport.waiting import wait_for

pytestmark = pytest.mark.slow

SHARDS = 2
PER_SHARD = 3
POD_ENV = {
    "SHARD_COUNT": str(SHARDS),
    "IDENTIFY_WINDOW_S": "0.2",
    "LEASE_TTL_S": "2",
    "REBALANCE_GRACE_S": "4",
}


@pytest.fixture
async def sandbox(pg: Backend) -> AsyncIterator[SandboxServer]:
    await delete_keys(pg.redis_client, "identify:*", "shard:*", "cluster:*", "answered:*")
    world = community_world([(s, SHARDS) for s in range(SHARDS) for _ in range(PER_SHARD)], 4)
    server = SandboxServer(world=world, identify_window=0.2, interaction_deadline=20)
    await server.start()
    await publish(server, pg.db_url)
    yield server
    await server.stop()


def guilds_of(server: SandboxServer, shard: int) -> list[Guild]:
    return [g for g in server.world.guilds.values() if (g.id >> 22) % SHARDS == shard]


def identifies(server: SandboxServer) -> int:
    return sum(1 for r in server.driver.identifies() if r.accepted)


async def held_by(cluster: Cluster, shards: list[int]) -> None:
    await cluster.server.driver.wait_for_shards(shards, timeout=60)


async def answered_everywhere(server: SandboxServer, guilds: list[Guild]) -> None:
    """A slash and a prefix /balance in each guild, each answered once, none refused."""
    driver = server.driver
    for guild in guilds:
        handle = await driver.slash(guild, "general", "m1", "balance")
        sent = await driver.send_message(guild, "quiet", "m2", "!balance")
        reply = await driver.wait_reply(sent, timeout=30)
        assert reply.content.startswith("You hold"), (guild.name, reply.content)
        response = await handle.wait_response(timeout=30)
        assert response.content.startswith("You hold"), (guild.name, response.content)
        assert len(handle.history) == 1


async def test_a_moved_shard_answers_from_its_snapshot_without_rest_or_identify(
    cluster: Cluster,
) -> None:
    await cluster.start(0)
    await held_by(cluster, [0, 1])
    await cluster.pods[0].wait_log("converged: shards [0, 1]", within=60)
    before_identifies, before_calls = identifies(cluster.server), time.time()
    await cluster.start(1)  # shard 1 moves to the new pod
    await cluster.pods[1].wait_log("converged: shards [1]", within=60)
    await held_by(cluster, [0, 1])
    await answered_everywhere(cluster.server, guilds_of(cluster.server, 1))
    assert cluster.pods[1].logged("(guilds: snapshot)")
    assert guild_state_calls(cluster.server, before_calls) == []
    assert identifies(cluster.server) == before_identifies
    exported = await cluster.pods[0].http("/metrics")  # the releasing pod measured its snapshot
    assert exported is not None and exported[0] == 200
    assert "guildbot_handover_snapshot_bytes_count 1.0" in exported[1]
    assert "guildbot_handover_snapshot_write_seconds_count 1.0" in exported[1]


async def test_a_stale_snapshot_is_not_used_and_guilds_load_over_rest(
    cluster: Cluster, pg: Backend
) -> None:
    await cluster.start(0)
    await held_by(cluster, [0, 1])
    await cluster.pods[0].wait_log("converged: shards [0, 1]", within=60)
    assert await cluster.pods[0].stop() == 0, cluster.pods[0].log()  # sessions + snapshots left
    client: redis.Redis = pg.redis_client
    await _make_stale(client, shard=1)
    # Prefix commands sent while no process holds the shards are replayed to the next owner.
    waiting = [
        (g, await cluster.server.driver.send_message(g, "quiet", "m3", "!balance"))
        for g in cluster.server.world.guilds.values()
    ]
    before_identifies, before_calls = identifies(cluster.server), time.time()
    await cluster.start(0)  # a new process
    await held_by(cluster, [0, 1])
    for guild, sent in waiting:
        reply = await cluster.server.driver.wait_reply(sent, timeout=30)
        assert reply.content.startswith("You hold"), (guild.name, reply.content)
    await answered_everywhere(cluster.server, list(cluster.server.world.guilds.values()))
    pod = cluster.pods[0]
    assert pod.logged("shard 1: stale snapshot")
    await wait_for(lambda: pod.logged("(guilds: snapshot)") or None, within=10)
    calls = [c.path for c in guild_state_calls(cluster.server, before_calls)]
    loaded = {f"/guilds/{g.id}" for g in guilds_of(cluster.server, 1)}
    assert sorted(c.split("/")[2] for c in calls) == sorted(
        g.split("/")[2] for g in loaded for _ in range(3)
    )  # three calls for each guild of shard 1, once; none for shard 0's
    assert identifies(cluster.server) == before_identifies


async def _make_stale(client: redis.Redis, shard: int) -> None:
    """Stamp the shard's saved session with a later fence, and move its snapshot there too: the
    key matches the session but the snapshot inside names another lease."""
    key = f"shard:{shard}:session"
    saved = json.loads(await client.get(key) or b"{}")
    fence = int(saved["fence"])
    assert await client.exists(f"shard:{shard}:snapshot:{fence}")
    await client.rename(f"shard:{shard}:snapshot:{fence}", f"shard:{shard}:snapshot:{fence + 1}")
    await client.set(key, json.dumps({**saved, "fence": fence + 1}), px=60_000)
