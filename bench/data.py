"""The benchmarks' data: a migrated database of each run's own, bulk loads, connections.

Every benchmark creates its own database on the server (random name, migrated to head,
dropped at the end), so concurrent runs and test suites never see each other's rows.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as redis
from tortoise.context import TortoiseContext

from app.db.connect import close_database, open_database
from app.db.migrate import run_migrations
from app.db.postgres import asyncpg_dsn
from testsupport.databases import connect, create_database, drop_database
from testsupport.keys import delete_keys


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """A migrated database of this run's own."""

    url: str  # postgres://... (Tortoise)
    dsn: str  # postgresql://... (asyncpg)


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str = "bench") -> AsyncIterator[BenchDatabase]:
    """Create a database with a random name, migrate it to head, drop it on exit."""
    url = await create_database(server_url, prefix)
    try:
        await run_migrations(url)
        yield BenchDatabase(url, asyncpg_dsn(url))
    finally:
        await drop_database(server_url, url)


@asynccontextmanager
async def tortoise_context() -> AsyncIterator[None]:
    """A Tortoise context for this benchmark's tasks; closes whatever was opened in it."""
    with TortoiseContext():
        try:
            yield
        finally:
            await close_database()


async def open_tortoise(url: str, connections: int) -> None:
    """(Re)open Tortoise with a pool of exactly `connections` connections."""
    await open_database(url, pool_min=connections, pool_max=connections)


async def pg_pool(dsn: str, connections: int) -> asyncpg.Pool:
    """An asyncpg pool of exactly `connections` connections (for the raw baselines)."""
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None
    return pool


MEMBER_COLUMNS = (
    "guild_id",
    "user_id",
    "display_name",
    "coins",
    "xp",
    "level",
    "version",
    "first_seen",
    "last_daily_at",
    "last_xp_at",
)


async def copy_members(conn: asyncpg.Connection, balances: Iterable[tuple[int, int, int]]) -> None:
    """Bulk-load members with COPY from (guild_id, user_id, coins), every column given (the
    table has no SQL defaults): no XP, no level, first seen now."""
    now = datetime.now(UTC)
    rows = ((g, u, "", coins, 0, 0, 0, now, None, None) for g, u, coins in balances)
    await conn.copy_records_to_table("members", records=rows, columns=list(MEMBER_COLUMNS))


async def vacuum_analyze(dsn: str, *tables: str) -> float:
    """VACUUM ANALYZE after a bulk load (fresh statistics and a visibility map); the seconds
    it took."""
    started = time.perf_counter()
    async with connect(dsn) as conn:
        for table in tables:
            await conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


async def fetch_value(dsn: str, query: str, *args: Any) -> Any:
    """One value from the database, on a connection of its own."""
    async with connect(dsn) as conn:
        return await conn.fetchval(query, *args)


@asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[redis.Redis]:
    """A Redis client, closed on exit."""
    client = redis.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


async def redis_version(url: str) -> str:
    """The Redis server's version."""
    async with redis_client(url) as client:
        return str((await client.info("server"))["redis_version"])


async def drop_leaderboard_keys(redis_url: str, guild_ids: Sequence[int]) -> None:
    """Delete the leaderboard cache keys of these guilds (RedisLeaderboard keys a guild's
    entries as lb:{guild_id}:...)."""
    async with redis_client(redis_url) as client:
        await delete_keys(client, *(f"lb:{{{guild_id}}}:*" for guild_id in guild_ids))
