"""Work run in child processes by the concurrency tests (spawned, so each has its own loop)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from threading import Barrier
from typing import Any

from app.coord import Coordination
from app.db.connect import close_database, open_database
from app.domain.errors import InsufficientFunds
from app.domain.idempotency import request_key
from app.domain.moderation import Moderation
from app.services import Services


def random_transfers(*args: Any) -> dict[str, int]:
    """`count` random transfers from `tasks` concurrent tasks; returns outcome counts."""
    return asyncio.run(_random_transfers(*args))


async def _random_transfers(
    db_url: str,
    redis_url: str,
    guild_id: int,
    users: list[int],
    hot: int,
    count: int,
    tasks: int,
    seed: int,
    functions: bool,
) -> dict[str, int]:
    await open_database(db_url, pool_max=tasks)
    coord = Coordination.from_redis(redis_url)
    bank = Services(coord, transfer_max=10_000, grant_max=10_000, bank_functions=functions).bank
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    plan = []
    for i in range(count):
        a, b = rng.sample(users, 2)
        if i % 4 == 0:  # a quarter of the traffic touches the hot account
            a, b = (hot, b) if rng.random() < 0.5 else (a, hot)
            if a == b:
                b = next(u for u in users if u != a)
        plan.append((a, b, rng.randint(1, 60), f"w{seed}:{i}"))
    queue: asyncio.Queue[tuple[int, int, int, str]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            a, b, amount, key = queue.get_nowait()
            try:
                await bank.transfer(guild_id, a, b, amount, key)
                outcomes["done"] += 1
            except InsufficientFunds:
                outcomes["insufficient"] += 1

    try:
        await asyncio.gather(*(worker() for _ in range(tasks)))
    finally:
        await coord.close()
        await close_database()
    return dict(outcomes)


def same_key_transfer(
    db_url: str,
    redis_url: str | None,
    guild_id: int,
    key: str,
    barrier: Barrier,
    functions: bool,
) -> tuple[tuple[int, int, bool], ...]:
    """Eight copies of one transfer with a fixed key, released together with the other process."""
    return asyncio.run(_same_key_transfer(db_url, redis_url, guild_id, key, barrier, functions))


async def _same_key_transfer(
    db_url: str,
    redis_url: str | None,
    guild_id: int,
    key: str,
    barrier: Barrier,
    functions: bool,
) -> tuple[tuple[int, int, bool], ...]:
    await open_database(db_url)
    # Without Redis the per-account lock is process-local: both processes reach the database.
    coord = Coordination.from_redis(redis_url) if redis_url else Coordination.local()
    bank = Services(coord, transfer_max=10_000, grant_max=10_000, bank_functions=functions).bank
    try:
        await asyncio.to_thread(barrier.wait)
        receipts = await asyncio.gather(*(bank.transfer(guild_id, 1, 2, 25, key) for _ in range(8)))
        return tuple((r.sender_balance, r.recipient_balance, r.replayed) for r in receipts)
    finally:
        await coord.close()
        await close_database()


def open_cases(db_url: str, guild_id: int, count: int, tasks: int, seed: int) -> list[int]:
    """Open `count` warn cases from `tasks` concurrent tasks; returns the numbers given."""
    return asyncio.run(_open_cases(db_url, guild_id, count, tasks, seed))


async def _open_cases(db_url: str, guild_id: int, count: int, tasks: int, seed: int) -> list[int]:
    await open_database(db_url, pool_max=tasks)
    numbers: list[int] = []
    todo = list(range(count))
    cases = Moderation()

    async def worker() -> None:
        while todo:
            i = todo.pop()
            key = request_key("case", f"{seed}:{i}")
            reason = f"spam {seed}/{i}"
            case = await cases.open_case(guild_id, "warn", 1000 + i, 99, reason, key=key)
            numbers.append(case.number)

    try:
        await asyncio.gather(*(worker() for _ in range(tasks)))
    finally:
        await close_database()
    return numbers
