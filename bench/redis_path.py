"""A transfer's Redis part alone: its account locks, taken and released with the write-through.

Part of `transfers`. Ours sends these round trips on one connection shared by the concurrent
callers, each loop turn's commands in one write (`RedisLink.direct`, app/coord/redis_direct.py).
Two baselines run the same `RedisLocks`: on a connection of its own per round trip (before,
2026-12-03), and through redis-py's connection pool (before that). They take turns, round after
round, in one process on one Redis; the figure that matters is the client's CPU per hold,
since at 8 callers the client's CPU decides the transfer rate.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from app.coord.leaderboard_cache import RedisLeaderboard, Standing
from app.coord.locks import RedisLocks
from app.coord.redis_direct import Command
from app.coord.redis_link import RedisLink
from bench.data import drop_leaderboard_keys
from bench.harness import snowflake
from bench.tables import Table, ratio
from bench.timing import Run, closed_loop

CALLERS = 8
ACCOUNTS = 100_000


class PerCallLink(RedisLink):
    """A link whose `direct` takes a connection of its own per round trip, as before."""

    async def direct(self, *commands: Command, blocking: bool = False) -> list[Any]:
        """`commands` in one round trip on an idle connection nobody shares meanwhile."""
        return await super().direct(*commands, blocking=True)


class PooledLink(RedisLink):
    """A link whose `direct` goes through redis-py's pool (a pipeline), as before."""

    async def direct(self, *commands: Command, blocking: bool = False) -> list[Any]:
        """`commands` in one pipelined round trip on a pooled connection."""

        async def send(client: Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())

        return await self.run(send)


def holding(locks: RedisLocks, guild_id: int, seed: int) -> Callable[[int], Awaitable[str]]:
    """One hold of two random accounts, with two balances to write through, per call."""
    rng = random.Random(seed)

    async def operation(i: int) -> str:
        a, b = rng.sample(range(1, ACCOUNTS), 2)
        async with locks.hold(guild_id, [a, b]) as hold:
            hold.standings += [Standing(a, 5, i + 1), Standing(b, 6, i + 1)]
        return "ok" if hold.acquired else "not acquired"

    return operation


async def compare(redis_url: str, rounds: int, seconds: float) -> tuple[Table, dict[str, Any]]:
    """Both paths, taking turns for `rounds` rounds of `seconds` each; the table, and each
    path's outcomes (every hold must have had its locks)."""
    links = {
        "one shared connection (ours)": RedisLink(redis_url),
        "a connection per round trip (before)": PerCallLink(redis_url),
        "redis-py's pool (before)": PooledLink(redis_url),
    }
    guild_id = snowflake()
    runs: dict[str, list[Run]] = {name: [] for name in links}
    try:
        for turn in range(rounds):
            for name, link in links.items():
                operation = holding(RedisLocks(link, RedisLeaderboard(link)), guild_id, turn)
                runs[name].append(await closed_loop(operation, CALLERS, seconds=seconds))
    finally:
        for link in links.values():
            await link.close()
        await drop_leaderboard_keys(redis_url, [guild_id])
    table = Table(
        f"A transfer's Redis part alone: both account locks taken, then released with the "
        f"leaderboard write-through, {CALLERS} callers",
        [
            "path",
            "holds/s",
            "rounds min-max",
            "p50 ms",
            "p99 ms",
            "client CPU us per hold",
            "pool's CPU / this",
        ],
    )
    pooled = {name: Run.pooled(rs) for name, rs in runs.items()}
    per_hold = {name: run.cpu / run.ops * 1e6 for name, run in pooled.items()}
    baseline = per_hold["redis-py's pool (before)"]
    for name, run in pooled.items():
        rates = sorted(r.rate for r in runs[name])
        table.add(
            name,
            run.rate,
            f"{rates[0]:,.0f}-{rates[-1]:,.0f}",
            run.p50_ms,
            run.p99_ms,
            per_hold[name],
            ratio(baseline, per_hold[name]),
        )
    return table, {name: dict(run.outcomes) for name, run in pooled.items()}
