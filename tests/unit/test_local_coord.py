"""The in-process coordination parts of the embedded default."""

import asyncio
import time
from collections.abc import AsyncIterator

from app.coord.cooldowns import LocalCooldowns
from app.coord.identify import LocalIdentifyQueue
from app.coord.leaderboard_cache import LocalLeaderboard, Standing
from app.coord.locks import LocalLocks
from app.coord.replies import LocalReplyClaims
from app.coord.snapshots import LocalSnapshotStore


async def test_local_locks_serialise_and_bound_the_wait() -> None:
    locks = LocalLocks(LocalLeaderboard(), wait_ms=50)
    inside = 0
    peak = 0

    async def hold() -> None:
        nonlocal inside, peak
        async with locks.hold(1, [3, 2]) as ok:
            assert ok
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(20)))
    assert peak == 1
    async with locks.hold(1, [2]) as first, locks.hold(1, [2]) as second:
        assert first and not second  # the bounded wait ran out: go on unlocked
    assert not locks._locks  # nothing left behind


async def test_local_leaderboard_orders_and_ignores_old_versions() -> None:
    board = LocalLeaderboard()

    async def rows() -> AsyncIterator[list[Standing]]:
        yield [Standing(3, 10, 1, "Cee"), Standing(1, 10, 1), Standing(2, 30, 1, "Bee")]

    await board.rebuild(9, rows())
    assert await board.page(9, 0, 10) == [(2, 30, "Bee"), (1, 10, ""), (3, 10, "Cee")]
    await board.record(9, [Standing(3, 50, 2), Standing(2, 0, 1)])  # (2, v1) is not newer
    await board.name(9, 1, "Ay")
    assert await board.page(9, 0, 10) == [(3, 50, "Cee"), (2, 30, "Bee"), (1, 10, "Ay")]
    assert await board.rank(9, 1) == 3 and await board.rank(9, 42) is None
    assert await board.page(10, 0, 10) is None  # never rebuilt: ask the database


async def test_local_cooldowns() -> None:
    cd = LocalCooldowns()
    assert await cd.try_start("k", 60)
    assert not await cd.try_start("k", 60)
    assert await cd.try_start("other", 60)


async def test_local_identify_queue_frees_a_bucket_its_holder_never_released() -> None:
    queue = LocalIdentifyQueue(window=0.05, hold_ttl=0.2)
    stuck = await queue.acquire(0, max_concurrency=1)  # a shard that never sees READY
    started = time.monotonic()
    waiter = await asyncio.wait_for(queue.acquire(1, max_concurrency=1), 5)
    assert 0.2 <= time.monotonic() - started < 2  # the hold expired, then the window passed
    await queue.release(stuck)  # late: frees nothing, the bucket is the waiter's now
    third = asyncio.create_task(queue.acquire(2, max_concurrency=1))
    await asyncio.sleep(0.1)  # longer than the window: only a wrongly freed bucket lets it in
    assert not third.done()
    await queue.release(waiter)
    await asyncio.wait_for(third, 5)


async def test_local_reply_claims_let_one_caller_answer() -> None:
    claims = LocalReplyClaims(ttl=60)
    assert [await claims.claim(7), await claims.claim(7), await claims.claim(8)] == [
        True,
        False,
        True,
    ]


async def test_local_snapshots_keep_the_newest_fence_of_a_shard_once() -> None:
    store = LocalSnapshotStore()
    await store.save(1, 4, b"old")
    await store.save(1, 5, b"new")
    assert await store.take(1, 4) is None
    assert await store.take(1, 5) == b"new"
    assert await store.take(1, 5) is None
