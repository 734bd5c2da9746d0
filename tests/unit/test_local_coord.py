"""The in-process coordination parts of the embedded default."""

import asyncio

from app.coord.cooldowns import LocalCooldowns
from app.coord.leaderboard_cache import LocalLeaderboard, Standing
from app.coord.locks import LocalLocks


async def test_local_locks_serialise_and_bound_the_wait() -> None:
    locks = LocalLocks(wait_ms=50)
    inside = 0
    peak = 0

    async def hold() -> None:
        nonlocal inside, peak
        async with locks.hold(["b", "a"]) as ok:
            assert ok
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(20)))
    assert peak == 1
    async with locks.hold(["a"]) as first, locks.hold(["a"]) as second:
        assert first and not second  # the bounded wait ran out: go on unlocked
    assert not locks._locks  # nothing left behind


async def test_local_leaderboard_orders_and_ignores_old_versions() -> None:
    board = LocalLeaderboard()

    async def rows():
        yield [Standing(3, 10, 1), Standing(1, 10, 1), Standing(2, 30, 1)]

    await board.rebuild(9, rows())
    assert await board.page(9, 0, 10) == [(2, 30), (1, 10), (3, 10)]
    await board.record(9, [Standing(3, 50, 2), Standing(2, 0, 1)])  # (2, v1) is not newer
    assert await board.page(9, 0, 10) == [(3, 50), (2, 30), (1, 10)]
    assert await board.rank(9, 1) == 3 and await board.rank(9, 42) is None
    assert await board.page(10, 0, 10) is None  # never rebuilt: ask the database


async def test_local_cooldowns() -> None:
    cd = LocalCooldowns()
    assert await cd.try_start("k", 60)
    assert not await cd.try_start("k", 60)
    assert await cd.try_start("other", 60)
