"""Apply aerich migrations to PostgreSQL under an advisory lock; check a database's schema.

Migrating is safe to run from many pods at once. `check_schema` tells whether a database is at
the head migration.

The migrations ship inside the package (`app/db/migrations`, package data), so an installed
bot, the image included, migrates without a source tree; MIGRATIONS_DIR overrides the place.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aerich import Command

from app.db.connect import tortoise_config
from app.db.postgres import connect, database_of
from app.db.schema import APPLIED_QUERY, MIGRATIONS_DIR, schema_problem, shipped_migrations
from app.ops.exits import Exit, Fatal

log = logging.getLogger(__name__)
T = TypeVar("T")

# Any fixed 64-bit number shared by every process that migrates this database.
ADVISORY_LOCK_ID = 0x6775696C64626F74  # "guildbot"


async def run_migrations(url: str, location: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration and return the names applied.

    A session-level advisory lock serialises concurrent runs: the second waits, then finds
    nothing left to apply. `Fatal` when no migrations are found or the database cannot be used.
    """
    shipped_migrations(location)
    lock_conn = await connect(url)
    try:
        await lock_conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        applied = await _isolated(_upgrade(url, location))
        for name in applied:
            log.info("applied migration %s", name)
        return applied
    finally:
        try:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
        finally:
            await lock_conn.close()


async def make_migration(url: str, name: str, location: Path = MIGRATIONS_DIR) -> str:
    """Write a migration for the difference between the models and the last migration.

    Needs a PostgreSQL database migrated to head. Returns the new file's name, or "" when
    the models have not changed. CHECKs and special indexes must be added to it by hand.
    """
    await run_migrations(url, location)
    return await _isolated(_diff(url, name, location))


async def check_schema(url: str, location: Path = MIGRATIONS_DIR) -> None:
    """`Fatal` unless the database answers and is at the head migration of `location`."""
    shipped = shipped_migrations(location)
    conn = await connect(url)
    try:
        applied = {row["version"] for row in await conn.fetch(APPLIED_QUERY)}
    except asyncpg.UndefinedTableError:
        applied = None
    finally:
        await conn.close()
    problem = schema_problem(applied, shipped)
    if problem is not None:
        raise Fatal(f"{database_of(url)} is not ready: {problem}", Exit.SCHEMA)


async def _upgrade(url: str, location: Path) -> list[str]:
    async with Command(tortoise_config(url), app="models", location=str(location)) as command:
        return await command.upgrade(run_in_transaction=True)


async def _diff(url: str, name: str, location: Path) -> str:
    async with Command(tortoise_config(url), app="models", location=str(location)) as command:
        return await command.migrate(name, no_input=True)


async def _isolated(work: Coroutine[Any, Any, T]) -> T:
    """Run aerich in a task with an empty context.

    Tortoise keeps its state in a ContextVar, and aerich's init and close must not touch a
    Tortoise the caller may have open.
    """
    return await asyncio.create_task(work, context=contextvars.Context())
