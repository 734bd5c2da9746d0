"""Shared fixtures: a migrated PostgreSQL database, the embedded SQLite default, and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis.asyncio as redis
from tortoise import connections
from tortoise.context import TortoiseContext

from app.coord import Coordination
from app.db.connect import close_database, open_database
from app.db.migrate import run_migrations
from app.domain import guilds
from app.domain.economy import Bank
from app.domain.leaderboard import Leaderboard
from bench.harness import create_database, drop_database
from tests.services import pg_base_url, redis_url

T = TypeVar("T")


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own (setup outside the test loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


TABLES = "case_edits, cases, ledger, refusals, members, guild_settings"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, migrated to head, dropped at the end."""
    base = pg_base_url()
    url = run_in_thread(create_database(base, "test"))
    run_in_thread(run_migrations(url))
    yield url
    run_in_thread(drop_database(base, url))


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The test Redis server."""
    return redis_url()


async def delete_keys(client: redis.Redis, *patterns: str) -> None:
    """Delete the keys matching `patterns`; a bot running meanwhile keeps its shard leases."""
    for pattern in patterns:
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        if keys:
            await client.delete(*keys)


class Backend:
    """One way to run the domain: PostgreSQL + Redis, or SQLite + in-process."""

    def __init__(self, name: str, db_url: str, coord: Coordination) -> None:
        self.name, self.db_url, self.coord = name, db_url, coord
        self.bank = Bank(coord, transfer_max=1_000_000, grant_max=1_000_000_000)
        self.leaderboard = Leaderboard(coord.leaderboard)

    async def reset(self) -> None:
        """Empty every table and the cache between tests."""
        conn = connections.get("default")
        if self.name == "postgres":
            await conn.execute_script(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        else:
            for table in TABLES.split(", "):
                await conn.execute_script(f"DELETE FROM {table}")
            self.coord.leaderboard.__init__()  # type: ignore[misc]
        if self.coord.redis is not None:
            await delete_keys(self.coord.redis.client, "lb:*", "lock:*", "cd:*")
        guilds._cache.clear()


class OpenDatabase:
    """The one database Tortoise has open for the tests; switched only when a test needs another.

    Tortoise keeps one context for the whole test session, so fixtures never close it behind
    another fixture's back: they ask for a URL and the switch reopens only when it changes.
    """

    url: str | None = None

    @classmethod
    async def use(cls, url: str) -> None:
        if cls.url != url:
            if cls.url is not None:
                await close_database()
            await open_database(url, pool_max=20)
            cls.url = url


@pytest.fixture(scope="session", autouse=True)
async def _tortoise_context() -> AsyncIterator[None]:
    """One Tortoise context for the session: set here, every test and fixture sees it."""
    with TortoiseContext():
        yield
        if OpenDatabase.url is not None:
            await close_database()
            OpenDatabase.url = None


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
async def backend_session(request, tmp_path_factory) -> AsyncIterator[Backend]:  # type: ignore[no-untyped-def]
    """The domain on PostgreSQL + Redis, then on the embedded default."""
    if request.param == "postgres":
        db_url = request.getfixturevalue("pg_url")
        coord = Coordination.from_redis(request.getfixturevalue("redis_server_url"))
    else:
        db_url = f"sqlite://{tmp_path_factory.mktemp('sqlite')}/bot.sqlite3"
        coord = Coordination.local()
    backend = Backend(request.param, db_url, coord)
    yield backend
    await coord.close()


@pytest.fixture
async def backend(backend_session: Backend) -> Backend:
    """A backend with empty tables."""
    await OpenDatabase.use(backend_session.db_url)
    await backend_session.reset()
    return backend_session


@pytest.fixture
async def pg(pg_url: str, redis_server_url: str) -> AsyncIterator[Backend]:
    """PostgreSQL + Redis only, empty, for tests that need the real servers."""
    await OpenDatabase.use(pg_url)
    coord = Coordination.from_redis(redis_server_url)
    backend = Backend("postgres", pg_url, coord)
    await backend.reset()
    yield backend
    await coord.close()


@pytest.fixture
async def raw_redis(redis_server_url: str) -> AsyncIterator[redis.Redis]:
    """A plain client on the test Redis."""
    client = redis.Redis.from_url(redis_server_url)
    yield client
    await client.aclose()
