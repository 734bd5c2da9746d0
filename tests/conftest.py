"""Shared fixtures: a migrated PostgreSQL database, the embedded SQLite default, and Redis."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import asyncpg
import pytest
import redis.asyncio as redis
from hypothesis import settings as hypothesis_settings
from tortoise import connections
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from app.coord import Coordination
from app.db.connect import close_database, open_database
from app.db.migrate import run_migrations
from app.ops.taskdump import dump_tasks
from app.services import Services
from tests.services import pg_base_url, redis_url
from testsupport.databases import create_database, drop_database
from testsupport.keys import delete_keys

T = TypeVar("T")

# Speed is measured in bench/, not in tests: a loaded CI machine must not fail a property test
# for taking longer than hypothesis's default 200 ms per example.
hypothesis_settings.register_profile("guildbot", deadline=None)
hypothesis_settings.load_profile("guildbot")


@pytest.hookimpl(hookwrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Iterator[None]:
    """Before pytest-timeout fails a hung test, log where each asyncio task is waiting.

    Its own dump shows threads only, and a hung test's thread just waits in the event loop.
    """
    yield
    if settings.method != "signal":
        return
    time_out = signal.getsignal(signal.SIGALRM)

    def dump_then_time_out(signum: int, frame: FrameType | None) -> None:
        with suppress(RuntimeError):  # no loop running: nothing to dump
            dump_tasks(f"timeout of {item.nodeid}")
        if callable(time_out):
            time_out(signum, frame)

    signal.signal(signal.SIGALRM, dump_then_time_out)


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own (setup outside the test loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


TABLES = "case_edits, effects, cases, ledger, refusals, members, guild_settings, web_sessions"


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


async def truncate_tables(conn: Any, attempts: int = 5) -> None:
    """TRUNCATE every table, again if PostgreSQL picked it as a deadlock's victim.

    A bot shared by a module's tests may still be writing the previous test's late work (XP of
    a replayed message, say) while its tables are locked one after another here.
    """
    for attempt in range(attempts):
        try:
            await conn.execute_script(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
            return
        except (asyncpg.DeadlockDetectedError, OperationalError) as exc:
            cause = exc if isinstance(exc, asyncpg.DeadlockDetectedError) else exc.__cause__
            if not isinstance(cause, asyncpg.DeadlockDetectedError) or attempt == attempts - 1:
                raise


class Backend:
    """One way to run the domain: PostgreSQL + Redis, or SQLite + in-process.

    "postgres-models" is PostgreSQL + Redis with the bank's model code instead of its
    database functions (BANK_PATHS: the bank's tests run on both).

    Every test gets a fresh Backend: new coordination parts and new services over empty tables,
    so no cache or in-process state survives from one test to the next.
    """

    def __init__(self, name: str, db_url: str, redis_url: str | None) -> None:
        self.name, self.db_url, self.redis_url = name, db_url, redis_url
        if redis_url is not None:
            self.coord = Coordination.from_redis(redis_url)
        else:
            self.coord = Coordination.local()
        self.services = Services(
            self.coord,
            transfer_max=1_000_000,
            grant_max=1_000_000_000,
            bank_functions=name != "postgres-models",
        )
        self.bank = self.services.bank
        self.leaderboard = self.services.leaderboard
        self.guilds = self.services.guilds
        self.moderation = self.services.moderation
        self.outbox = self.services.outbox
        self.levels = self.services.levels

    @property
    def redis_client(self) -> redis.Redis:
        """The Redis client of the PostgreSQL + Redis backend."""
        assert self.coord.redis is not None, f"the {self.name} backend has no Redis"
        return self.coord.redis.client

    async def reset(self) -> None:
        """Empty every table and the shared cache keys."""
        conn = connections.get("default")
        if self.name.startswith("postgres"):
            await truncate_tables(conn)
        else:
            for table in TABLES.split(", "):
                await conn.execute_script(f"DELETE FROM {table}")
        if self.coord.redis is not None:
            await delete_keys(self.coord.redis.client, "lb:*", "holds:*", "cd:*")

    async def close(self) -> None:
        """Close the coordination parts."""
        await self.services.close()


class OpenDatabase:
    """The one database Tortoise has open for the tests; switched only when a test needs another.

    Tortoise keeps one context for the whole test session, so fixtures never close it behind
    another fixture's back: they ask for a URL and the switch reopens only when it changes.
    A test that initialises Tortoise elsewhere in this process (another thread, another
    context) calls `invalidate()`: every model's query builder is class state, rebuilt for the
    dialect of whichever init ran last, so the next `use` must initialise again.
    """

    url: str | None = None
    stale = False

    @classmethod
    def invalidate(cls) -> None:
        """Make the next `use` reopen even the same database."""
        cls.stale = True

    @classmethod
    async def use(cls, url: str) -> None:
        if cls.url != url or cls.stale:
            cls.stale = False
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


@dataclass(frozen=True)
class BackendKind:
    """Where a backend's data lives: PostgreSQL + Redis, or a SQLite file and no Redis."""

    name: str
    db_url: str
    redis_url: str | None


#: The bank's tests run on each of its paths: `pytestmark = BANK_PATHS` in their module.
BANK_PATHS = pytest.mark.parametrize(
    "backend_kind", ["postgres", "postgres-models", "sqlite"], indirect=True
)


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def backend_kind(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> BackendKind:
    """The domain on PostgreSQL + Redis, then on the embedded default."""
    if request.param.startswith("postgres"):
        url = request.getfixturevalue("pg_url")
        return BackendKind(request.param, url, request.getfixturevalue("redis_server_url"))
    db_url = f"sqlite://{tmp_path_factory.mktemp('sqlite')}/bot.sqlite3"
    return BackendKind("sqlite", db_url, None)


async def fresh_backend(kind: BackendKind) -> Backend:
    """A new Backend over emptied tables."""
    await OpenDatabase.use(kind.db_url)
    backend = Backend(kind.name, kind.db_url, kind.redis_url)
    await backend.reset()
    return backend


@pytest.fixture
async def backend(backend_kind: BackendKind) -> AsyncIterator[Backend]:
    """A backend of each kind with empty tables."""
    backend = await fresh_backend(backend_kind)
    yield backend
    await backend.close()


@pytest.fixture
async def pg(pg_url: str, redis_server_url: str) -> AsyncIterator[Backend]:
    """PostgreSQL + Redis only, empty, for tests that need the real servers."""
    backend = await fresh_backend(BackendKind("postgres", pg_url, redis_server_url))
    yield backend
    await backend.close()


@pytest.fixture
async def raw_redis(redis_server_url: str) -> AsyncIterator[redis.Redis]:
    """A plain client on the test Redis."""
    client = redis.Redis.from_url(redis_server_url)
    yield client
    await client.aclose()
