"""Apply aerich migrations to PostgreSQL under an advisory lock, safe to run from many pods."""

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

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Any fixed 64-bit number shared by every process that migrates this database.
ADVISORY_LOCK_ID = 0x6775696C64626F74  # "guildbot"


def asyncpg_dsn(url: str) -> str:
    """The same database URL in the form asyncpg accepts."""
    for prefix in ("asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


async def run_migrations(url: str, location: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration and return the names applied.

    A session-level advisory lock serialises concurrent runs: the second waits, then finds
    nothing left to apply.
    """
    lock_conn = await asyncpg.connect(asyncpg_dsn(url))
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


async def _upgrade(url: str, location: Path) -> list[str]:
    async with Command(tortoise_config(url), app="models", location=str(location)) as command:
        return await command.upgrade(run_in_transaction=True)


async def _diff(url: str, name: str, location: Path) -> str:
    async with Command(tortoise_config(url), app="models", location=str(location)) as command:
        return await command.migrate(name, no_input=True)


async def _isolated(work: Coroutine[Any, Any, T]) -> T:
    """Run aerich in a task with an empty context: Tortoise keeps its state in a ContextVar,
    and aerich's init and close must not touch a Tortoise the caller may have open."""
    return await asyncio.create_task(work, context=contextvars.Context())
