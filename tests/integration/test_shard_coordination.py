"""Identify queue and shard leases against the real Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from app.coord.identify import RedisIdentifyQueue
from app.coord.leaderboard_cache import RedisLeaderboard
from app.coord.leases import RedisShardLeases
from app.coord.locks import RedisLocks
from app.coord.redis_link import RedisLink
from app.coord.replies import RedisReplyClaims
from app.coord.snapshots import RedisSnapshotStore, ShardSnapshot, pack_guild, unpack_guild
from tests.services import private_redis
from testsupport.keys import delete_keys
from testsupport.waiting import wait_for


@pytest.fixture
async def link(redis_server_url: str, raw_redis: redis.Redis) -> AsyncIterator[RedisLink]:
    await delete_keys(raw_redis, "identify:*", "shard:*")
    link = RedisLink(redis_server_url)
    yield link
    await link.close()


async def test_identify_queue_spaces_one_bucket_across_queues(link: RedisLink) -> None:
    window = 0.3
    pods = [RedisIdentifyQueue(link, window) for _ in range(3)]  # three "pods"
    sent: list[tuple[int, float]] = []

    async def shard(pod: RedisIdentifyQueue, shard_id: int) -> None:
        ticket = await pod.acquire(shard_id, max_concurrency=1)
        sent.append((shard_id, time.time()))
        await pod.release(ticket)  # READY at once

    await asyncio.gather(*(shard(pods[i % 3], i) for i in range(6)))
    times = sorted(t for _, t in sent)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 6 and min(gaps) >= window * 0.95, gaps


async def test_identify_buckets_run_in_parallel(link: RedisLink) -> None:
    window = 0.4
    queue_a, queue_b = RedisIdentifyQueue(link, window), RedisIdentifyQueue(link, window)
    started = time.monotonic()
    tickets = await asyncio.gather(
        queue_a.acquire(0, max_concurrency=2), queue_b.acquire(1, max_concurrency=2)
    )
    assert time.monotonic() - started < window  # different buckets: no waiting
    for queue, ticket in zip((queue_a, queue_b), tickets, strict=True):
        await queue.release(ticket)


async def test_a_held_lease_makes_the_second_claimant_wait(link: RedisLink) -> None:
    first = RedisShardLeases(link, "pod-a", ttl=1.0)
    second = RedisShardLeases(link, "pod-b", ttl=1.0)
    lease = await first.acquire(3)
    with pytest.raises(TimeoutError):
        await second.acquire(3, wait=0.3)
    waiter = asyncio.create_task(second.acquire(3))
    await first.release(3)
    taken = await asyncio.wait_for(waiter, 5)
    assert taken.fence == lease.fence + 1  # a new owner gets a higher fencing token
    assert await first.renew() == []  # first holds nothing any more
    await second.close()


async def test_a_lease_taken_over_is_reported_lost(link: RedisLink, raw_redis: redis.Redis) -> None:
    holder = RedisShardLeases(link, "pod-a", ttl=5.0)
    await holder.acquire(7)
    await raw_redis.delete("shard:7:lease")  # as if it expired during a long pause
    thief = RedisShardLeases(link, "pod-b", ttl=5.0)
    await thief.acquire(7)
    assert await holder.renew() == [7]
    assert 7 not in holder.held()
    await thief.close()


async def test_a_cancelled_waiter_does_not_keep_the_bucket(link: RedisLink) -> None:
    queue = RedisIdentifyQueue(link, window=0.3)
    first = await queue.acquire(0, max_concurrency=1)
    await queue.release(first)  # the bucket is closed for the next 0.3 s
    waiter = asyncio.create_task(queue.acquire(1, max_concurrency=1))
    await wait_for(lambda: queue.local._locks[0].locked(), within=5)  # it waits
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    ticket = await asyncio.wait_for(queue.acquire(2, max_concurrency=1), 5)
    await queue.release(ticket)


async def test_after_redis_lost_its_data_no_lease_is_granted_for_a_ttl(
    link: RedisLink, raw_redis: redis.Redis
) -> None:
    holder = RedisShardLeases(link, "pod-a", ttl=1.0)
    await holder.acquire(5)
    await delete_keys(raw_redis, "shard:*", "cluster:*")  # Redis restarted empty
    claimant = RedisShardLeases(link, "pod-b", ttl=1.0)
    started = time.monotonic()
    taking = asyncio.create_task(claimant.acquire(5))
    assert await holder.renew() == [5]  # the old holder notices first and stops the shard
    await taking
    assert time.monotonic() - started >= 0.9  # the new epoch held every lease back a TTL
    await claimant.close()


async def test_account_lock_waits_are_reported(link: RedisLink) -> None:
    locks = RedisLocks(link, RedisLeaderboard(link), ttl_ms=2_000, wait_ms=200)
    waits: list[float] = []
    locks.on_wait = waits.append
    async with (
        locks.hold(7, [1, 2]) as first,
        locks.hold(7, [2]) as second,
        locks.hold(7, [2]) as third,
    ):
        assert first and second and not third  # the bounded wait ran out: going on unlocked
    assert len(waits) == 3 and waits[2] >= 0.2


async def test_a_redis_restart_behind_stale_connections_still_holds_leases_back_a_ttl() -> None:
    async with private_redis() as server:
        link = RedisLink(server.url)
        try:
            holder = RedisShardLeases(link, "pod-a", ttl=1.5)
            claimant = RedisShardLeases(link, "pod-b", ttl=1.5)
            await asyncio.gather(*(holder.acquire(s) for s in range(4)))  # pooled connections
            await server.restart()  # every key lost; every pooled connection is now stale
            restarted = time.monotonic()
            assert await link.run(lambda r: r.ping())  # redis-py retried on a new connection
            assert link.usable  # so the breaker never opened
            taking = asyncio.create_task(claimant.acquire(0))
            assert sorted(await holder.renew()) == [0, 1, 2, 3]  # the old holder notices
            await taking
            assert time.monotonic() - restarted >= 1.5 * 0.95  # a whole TTL, none skipped
            await server.restart()  # Redis loses its data again while a claimant waits
            again = time.monotonic()
            await claimant.release(0)
            await claimant.acquire(1)
            assert time.monotonic() - again >= 1.5 * 0.95
        finally:
            await link.close()


async def test_a_message_is_claimed_for_its_answer_once_across_processes(
    link: RedisLink, raw_redis: redis.Redis
) -> None:
    await raw_redis.delete("answered:42")
    pods = [RedisReplyClaims(link, ttl=5), RedisReplyClaims(link, ttl=5)]  # two "pods"
    won = await asyncio.gather(*(pod.claim(42) for pod in pods * 3))
    assert sorted(won) == [False] * 5 + [True]
    assert 0 < await raw_redis.pttl("answered:42") <= 5000


async def test_a_lease_released_during_a_renewal_is_not_reported_lost(link: RedisLink) -> None:
    leases = RedisShardLeases(link, "pod-a", ttl=5.0)
    await asyncio.gather(*(leases.acquire(s) for s in range(20)))
    renewing = asyncio.create_task(leases.renew())
    await asyncio.sleep(0)  # let the renewal take its list of leases and start on the first
    await leases.release(19)  # still on that list
    assert await renewing == []
    await leases.close()


async def test_a_snapshot_is_taken_once_and_only_under_its_fence(link: RedisLink) -> None:
    store = RedisSnapshotStore(link, ttl=30)
    guilds = {1: pack_guild({"id": "1", "name": "a"}), 2: pack_guild({"id": "2", "name": "b"})}
    snapshot = ShardSnapshot("s1", 41, 7, guilds)
    await store.save(3, 7, snapshot.encode())
    assert await store.take(3, 8) is None  # another lease's fence
    blob = await store.take(3, 7)
    assert blob is not None and ShardSnapshot.decode(blob) == snapshot
    assert unpack_guild(ShardSnapshot.decode(blob).guilds[2]) == {"id": "2", "name": "b"}
    assert await store.take(3, 7) is None  # taken once
    assert snapshot.belongs_to("s1", 41, 7)
    assert not snapshot.belongs_to("s1", 42, 7) and not snapshot.belongs_to("s1", 41, 8)
