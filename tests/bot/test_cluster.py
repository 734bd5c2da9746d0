"""A sharded cluster: several bot processes sharing 6 shards through Redis, against the sandbox.

Identify queue (no op 9 when processes start together), shard leases (one session per shard),
RESUME after SIGKILL, a SIGTERM in the middle of a burst of transfers, and the ops endpoints.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.bot.fatal import ExitCode
from app.db.models import LedgerEntry
from sandbox import InteractionHandle, SandboxServer
from tests.bot.cluster import Cluster, publish
from tests.bot.world import community_world
from tests.conftest import Backend
from tests.ledger_checks import total_coins
from testsupport.keys import delete_keys
from testsupport.waiting import wait_for

pytestmark = pytest.mark.slow

SHARDS = 6
PER_POD = 2
WINDOW = 0.5  # the sandbox's identify window, and the bots' (IDENTIFY_WINDOW_S)
POD_ENV = {
    "SHARD_COUNT": str(SHARDS),
    "SHARDS_PER_POD": str(PER_POD),
    "IDENTIFY_WINDOW_S": str(WINDOW),
    "LEASE_TTL_S": "3",
}


async def cluster_sandbox(max_concurrency: int) -> SandboxServer:
    world = community_world([(shard, SHARDS) for shard in range(SHARDS)], members=4)
    server = SandboxServer(
        world=world,
        identify_window=WINDOW,
        max_concurrency=max_concurrency,
        interaction_deadline=30,
    )
    await server.start()
    return server


@pytest.fixture
async def sandbox(pg: Backend, redis_server_url: str) -> AsyncIterator[SandboxServer]:
    await delete_keys(pg.redis_client, "identify:*", "shard:*")
    server = await cluster_sandbox(max_concurrency=1)
    await publish(server, pg.db_url)
    yield server
    await server.stop()


def accepted_identifies(server: SandboxServer, shard: int | None = None) -> int:
    return sum(
        1
        for r in server.driver.identifies()
        if r.accepted and (shard is None or r.shard_id == shard)
    )


async def test_three_pods_start_together_within_the_identify_limit(cluster: Cluster) -> None:
    started = time.monotonic()
    await cluster.start(0, 1, 2)
    await cluster.wait_ready()
    elapsed = time.monotonic() - started
    driver = cluster.server.driver
    assert [r for r in driver.identifies() if not r.accepted] == []  # not a single op 9
    assert accepted_identifies(cluster.server) == SHARDS
    holders = driver.shard_holders()
    assert all(len(holders[s]) == 1 for s in range(SHARDS))
    assert driver.duplicate_shard_holders() == []
    times = sorted(r.time for r in driver.identifies())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= WINDOW * 0.99  # one bucket: never two identifies within the window
    floor = (SHARDS - 1) * WINDOW
    print(
        f"\n6 shards, 3 pods, max_concurrency 1: all READY after {elapsed:.2f} s "
        f"(identify floor {floor:.1f} s, first-to-last identify {times[-1] - times[0]:.2f} s)"
    )

    # The ops endpoints of a ready pod.
    assert await cluster.http(0, "/livez") == "ok\n"
    assert await cluster.http(0, "/startupz", ok_only=True) == "started\n"
    body = await cluster.http(0, "/metrics")
    assert body is not None
    families = {f.name: f for f in text_string_to_metric_families(body)}
    up = {s.labels["shard"]: s.value for s in families["guildbot_shard_up"].samples}
    assert up == {"0": 1.0, "1": 1.0}
    assert families["guildbot_owned_shards"].samples[0].value == 2
    assert families["guildbot_ready"].samples[0].value == 1


async def test_buckets_identify_in_parallel_with_max_concurrency_2(
    pg: Backend, redis_server_url: str, tmp_path: Path
) -> None:
    await delete_keys(pg.redis_client, "identify:*", "shard:*")
    server = await cluster_sandbox(max_concurrency=2)
    group = Cluster(server, pg, redis_server_url, tmp_path, **POD_ENV)
    try:
        started = time.monotonic()
        await group.start(0, 1, 2)
        await group.wait_ready()
        elapsed = time.monotonic() - started
        records = server.driver.identifies()
        assert [r for r in records if not r.accepted] == []
        for bucket in (0, 1):
            times = sorted(r.time for r in records if r.shard_id % 2 == bucket)
            assert len(times) == SHARDS // 2
            assert min(b - a for a, b in itertools.pairwise(times)) >= WINDOW * 0.99
        first, last = min(r.time for r in records), max(r.time for r in records)
        floor = (SHARDS // 2 - 1) * WINDOW
        print(
            f"\n6 shards, 3 pods, max_concurrency 2: all READY after {elapsed:.2f} s "
            f"(identify floor {floor:.1f} s, first-to-last identify {last - first:.2f} s)"
        )
        assert last - first < (SHARDS - 1) * WINDOW  # faster than one bucket could be
    finally:
        await group.close()
        await server.stop()


async def test_readyz_waits_for_every_owned_shard(cluster: Cluster) -> None:
    # Shard 0's lease is held elsewhere, so pod 0 cannot be ready until it is released.
    link = cluster.pg.redis_client
    await link.set("shard:0:lease", "someone-else|999", px=60_000)
    await cluster.start(0)
    await wait_for(lambda: cluster.http(0, "/livez", ok_only=True), within=30)
    await cluster.pods[0].wait_log("held by another process")
    assert await cluster.http(0, "/readyz", ok_only=True) is None
    assert await cluster.http(0, "/startupz", ok_only=True) is None
    said = await cluster.http(0, "/readyz")
    assert said is not None and said.startswith("not ready: 0 of 2 shard(s) serving"), said
    await link.delete("shard:0:lease")  # the other holder lets go
    await wait_for(lambda: cluster.http(0, "/readyz", ok_only=True), within=30)
    assert cluster.server.driver.shard_holders().keys() >= {0, 1}


async def test_sigkill_and_replacement_resumes_without_a_second_session(
    cluster: Cluster,
) -> None:
    await cluster.start(0, 1, 2)
    await cluster.wait_ready()
    driver = cluster.server.driver
    before = {s: accepted_identifies(cluster.server, s) for s in (2, 3)}
    await cluster.pods[1].wait_log("shard 3 ready")
    await wait_for(lambda: _saved(cluster, 3), within=10)  # sessions saved every second
    await cluster.pods[1].kill()
    await cluster.start(1)  # the StatefulSet's replacement, same pod index
    await cluster.pods[1].wait_log("shard 2 resumed", within=30)
    await cluster.pods[1].wait_log("shard 3 resumed", within=30)
    assert {s: accepted_identifies(cluster.server, s) for s in (2, 3)} == before
    assert driver.duplicate_shard_holders() == []
    holders = driver.shard_holders()
    assert len(holders[2]) == len(holders[3]) == 1
    # The new owner serves the resumed shards' guilds.
    guild = next(g for g in cluster.server.world.guilds.values() if (g.id >> 22) % SHARDS == 2)
    handle = await driver.slash(guild, "general", "m1", "balance")
    reply = await handle.wait_response(timeout=15)
    assert reply.content.startswith("You hold")


async def _saved(cluster: Cluster, shard: int) -> bool:
    link = cluster.pg.redis_client
    return bool(await link.exists(f"shard:{shard}:session"))


async def test_a_command_in_flight_when_its_pod_is_killed_is_replayed_and_answered_once(
    cluster: Cluster,
) -> None:
    """A prefix transfer is received, then held on a row lock while its session is saved; the
    pod is killed. Its replacement RESUMEs from before that message: the transfer runs there,
    once, and is answered once. (Saving the last sequence received lost it: no answer.)"""
    await cluster.start(0, 1, 2)
    await cluster.wait_ready()
    world, driver = cluster.server.world, cluster.server.driver
    guild = next(g for g in world.guilds.values() if (g.id >> 22) % SHARDS == 3)  # pod 1's
    sender, recipient = world.user("m1").id, world.user("m2").id
    await cluster.pg.bank.grant(guild.id, 1, sender, 100)
    conn = await asyncpg.connect(cluster.pg.db_url)
    try:
        lock = conn.transaction()
        await lock.start()
        await conn.execute(
            "SELECT 1 FROM members WHERE guild_id = $1 AND user_id = $2 FOR UPDATE",
            guild.id,
            sender,
        )
        events_before = await _events_seen(cluster, 1, shard=3)
        sent = await driver.send_message(guild, "general", "m1", f"!transfer <@{recipient}> 7")
        await driver.send_message(guild, "general", "m3", "just chatting")  # a later event
        # The transfer waits on the lock; a session save has seen both events since.
        await wait_for(lambda: _waiting_on_a_lock(conn), within=20)
        await wait_for(lambda: _events_seen_at_least(cluster, 1, 3, events_before + 2), within=20)
        await cluster.pods[1].kill()
        await lock.rollback()
    finally:
        await conn.close()
    await cluster.start(1)
    await cluster.pods[1].wait_log("shard 3 resumed", within=30)
    reply = await driver.wait_reply(sent, timeout=30)
    assert reply.content.startswith("Sent"), reply.content
    assert [m.content for m in driver.bot_messages(guild, "general")].count(reply.content) == 1
    assert await LedgerEntry.filter(guild_id=guild.id, kind="transfer_out").count() == 1
    assert await total_coins(guild.id) == 100


async def _events_seen(cluster: Cluster, pod: int, shard: int) -> float:
    """The gateway events of `shard` the pod counted at its last session save."""
    body = await cluster.http(pod, "/metrics")
    assert body is not None
    for family in text_string_to_metric_families(body):
        if family.name == "guildbot_events":
            return sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels.get("shard") == str(shard)
            )
    return 0.0


async def _events_seen_at_least(cluster: Cluster, pod: int, shard: int, count: float) -> bool:
    return await _events_seen(cluster, pod, shard) >= count


async def _waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    # Statistics stay as first read for the rest of a transaction (`conn` holds the lock in one).
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    )
    return bool(waiting)


async def test_sigterm_during_a_burst_of_transfers_loses_nothing(cluster: Cluster) -> None:
    await cluster.start(0, 1, 2)
    await cluster.wait_ready()
    world = cluster.server.world
    names = ["m1", "m2", "m3", "m4"]
    guilds = list(world.guilds.values())
    for guild in guilds:
        for name in names:
            await cluster.pg.bank.grant(guild.id, 1, world.user(name).id, 1_000)
    driver = cluster.server.driver
    rng = random.Random(7)
    handles = []

    async def send(i: int) -> None:
        guild = guilds[i % len(guilds)]
        sender, recipient = rng.sample(names, 2)
        handles.append(
            await driver.slash(
                guild, "general", sender, "transfer", member=recipient, amount=rng.randint(1, 20)
            )
        )

    await asyncio.gather(*(send(i) for i in range(30)))
    os.kill(cluster.pods[0].pid, signal.SIGTERM)  # mid-burst
    await asyncio.gather(*(send(i) for i in range(30, 60)))
    assert await cluster.pods[0].stop() == 0, cluster.pods[0].log()
    await cluster.start(0)
    replacement = cluster.pods[0]

    def expired(handle: InteractionHandle) -> bool:
        return replacement.logged(f"(request {handle.id})")  # "not running ... (request N)"

    # A command for pod 0's shards sent while no pod held them reaches the replacement after
    # Discord's 3 s window: it is not run (nothing moves) and gets no reply. Every other
    # command is answered exactly once, served before its shard was parked or replayed after.
    await wait_for(lambda: all(h.history or expired(h) for h in handles), within=40)
    answered = [h for h in handles if not expired(h)]
    assert all(len(h.history) == 1 for h in answered)  # one reply each (deferred or not)
    assert all(h.history == [] for h in handles if expired(h))
    replies = [h.history[0].content for h in answered]
    assert [r for r in replies if not r.startswith("Sent")] == []
    assert await LedgerEntry.filter(kind="transfer_out").count() == len(answered)
    for guild in guilds:
        assert await total_coins(guild.id) == 1_000 * len(names)
    assert driver.duplicate_shard_holders() == []


async def test_shard_count_auto_is_read_once_per_cluster(
    pg: Backend, redis_server_url: str, tmp_path: Path
) -> None:
    link = pg.redis_client
    await delete_keys(link, "identify:*", "shard:*", "cluster:*")
    server = SandboxServer(
        world=community_world([(0, 2), (1, 2)], members=2),
        identify_window=0.2,
        shards_recommended=2,
    )
    await server.start()
    env = {
        "SHARD_COUNT": "auto",
        "IDENTIFY_WINDOW_S": "0.2",
        "LEASE_TTL_S": "3",
        "REBALANCE_GRACE_S": "5",
    }
    group = Cluster(server, pg, redis_server_url, tmp_path, **env)
    try:
        await group.start(0)
        await group.pods[0].wait_log("SHARD_COUNT=auto: 2 shards")
        server.settings.shards_recommended = 5  # Discord changes its mind: the cluster must not
        await group.start(1)
        await group.pods[1].wait_log("SHARD_COUNT=auto: 2 shards")
        await server.driver.wait_for_shards([0, 1], timeout=30)
        stored = await link.get("cluster:shard_count")
        assert stored is not None and int(stored) == 2
    finally:
        await group.close()
        await server.stop()


async def test_a_pod_stops_rather_than_identify_below_the_session_budget(
    pg: Backend, redis_server_url: str, tmp_path: Path
) -> None:
    await delete_keys(pg.redis_client, "identify:*", "shard:*", "cluster:*")
    server = SandboxServer(world=community_world(members=2), identify_window=0.2)
    server.gateway.start_limit_remaining = 40  # what /gateway/bot reports as remaining
    await server.start()
    group = Cluster(
        server,
        pg,
        redis_server_url,
        tmp_path,
        SHARD_COUNT="1",
        SHARD_IDS="[0]",
        IDENTIFY_MIN_REMAINING="50",
    )
    try:
        await group.start(0)
        proc = group.pods[0].proc
        assert proc is not None
        assert await asyncio.wait_for(proc.wait(), 30) == ExitCode.IDENTIFY_BUDGET_EXHAUSTED
        [line] = group.pods[0].errors()
        assert "identify budget exhausted: 40 session starts left today" in line
        assert "below IDENTIFY_MIN_REMAINING=50" in line
        assert server.driver.identifies() == []
    finally:
        await group.close()
        await server.stop()
