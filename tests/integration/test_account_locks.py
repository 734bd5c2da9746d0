"""The account locks in the real Redis: one script takes them, each admits two holds at once,
a wake list ends a wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as redis

from app.coord.leaderboard_cache import RedisLeaderboard, Standing
from app.coord.locks import ADMITTED, Hold, RedisLocks
from app.coord.redis_link import RedisLink
from testsupport.keys import delete_keys
from testsupport.waiting import wait_for

G = 777777777777777777


@pytest.fixture
async def links(redis_server_url: str, raw_redis: redis.Redis) -> AsyncIterator[list[RedisLink]]:
    """Two clients of one Redis, as two processes would have."""
    await delete_keys(raw_redis, f"holds:{{{G}}}:*", f"lb:{{{G}}}:*")
    pair = [RedisLink(redis_server_url), RedisLink(redis_server_url)]
    yield pair
    for link in pair:
        await link.close()


def locks(link: RedisLink, ttl_ms: int = 5_000, wait_ms: int = 2_000) -> RedisLocks:
    return RedisLocks(link, RedisLeaderboard(link), ttl_ms=ttl_ms, wait_ms=wait_ms)


async def fill(stack: AsyncExitStack, side: RedisLocks, users: list[int]) -> None:
    """Take every admission of `users`' locks (released when `stack` closes)."""
    for _ in range(ADMITTED):
        assert await stack.enter_async_context(side.hold(G, users))


async def test_two_holders_at_a_time_across_clients(links: list[RedisLink]) -> None:
    a, b = locks(links[0]), locks(links[1])
    inside = peak = 0

    async def transfer(side: RedisLocks, users: list[int]) -> bool:
        nonlocal inside, peak
        async with side.hold(G, users) as hold:
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1
            return hold.acquired

    results = await asyncio.gather(
        *(transfer(a if i % 2 else b, [1, 2] if i % 3 else [2, 1]) for i in range(12))
    )
    assert all(results) and peak == ADMITTED == 2


async def test_a_hold_is_all_or_none(links: list[RedisLink]) -> None:
    a, b = locks(links[0]), locks(links[1], wait_ms=100)
    async with AsyncExitStack() as stack:
        await fill(stack, a, [2])
        async with b.hold(G, [1, 2]) as refused:
            assert not refused
        # the refused hold left nothing on lock 1: it still admits two
        await fill(stack, b, [1])


async def test_a_waiter_wakes_on_release_without_polling(links: list[RedisLink]) -> None:
    a, b = locks(links[0]), locks(links[1])
    async with AsyncExitStack() as stack:
        await fill(stack, a, [1, 2])
        waiting = asyncio.create_task(b.hold(G, [2, 3]).__aenter__())
        await wait_for(lambda: blocked(links[0]))  # the waiter is blocked on lock 2's wake list
        released = time.monotonic()
    hold = await waiting
    woke = time.monotonic() - released
    assert hold.acquired and woke < 0.05, woke


async def blocked(link: RedisLink) -> int:
    """How many clients Redis counts as blocked (a waiter in its BLPOP)."""
    return int((await link.client.info("clients"))["blocked_clients"])


async def test_the_wait_is_bounded(links: list[RedisLink]) -> None:
    a, b = locks(links[0]), locks(links[1], wait_ms=300)
    async with AsyncExitStack() as stack:
        await fill(stack, a, [1])
        started = time.monotonic()
        async with b.hold(G, [1, 4]) as second:
            waited = time.monotonic() - started
            assert not second  # going on unlocked
    assert 0.3 <= waited < 0.6
    async with b.hold(G, [4]) as third:  # nothing was left taken by the failed attempt
        assert third


async def test_an_expired_hold_makes_room_without_a_wake(links: list[RedisLink]) -> None:
    a, b = locks(links[0], ttl_ms=300), locks(links[1])
    stalled: list[Hold] = []
    holders = [a.hold(G, [5]) for _ in range(ADMITTED)]
    for holder in holders:  # their holders stall past the TTL: admissions lost
        stalled.append(await holder.__aenter__())
    assert all(stalled)
    started = time.monotonic()
    async with b.hold(G, [5]) as late:
        assert late and time.monotonic() - started < 0.5
        for holder in holders:
            await holder.__aexit__(None, None, None)  # the old tokens free nothing
        assert await links[0].client.zcard(RedisLocks.key(G, 5)) == 1


async def test_the_release_writes_the_leaderboard_through(links: list[RedisLink]) -> None:
    side = locks(links[0])
    async with side.hold(G, [1, 2]) as hold:
        hold.standings += [Standing(1, 40, 3), Standing(2, 60, 3)]
    zset, _, _ = RedisLeaderboard.keys(G)
    assert await links[0].client.zrange(zset, 0, -1) == [b"%020d" % 2, b"%020d" % 1]
    assert not await links[0].client.exists(RedisLocks.key(G, 1), RedisLocks.key(G, 2))
