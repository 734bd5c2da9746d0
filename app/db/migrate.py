"""Apply aerich migrations to PostgreSQL under an advisory lock, safe to run from many pods."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
from aerich import Command

from app.db.connect import tortoise_config

log = logging.getLogger(__name__)

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
        async with Command(tortoise_config(url), app="models", location=str(location)) as command:
            await command.init()
            applied = await command.upgrade(run_in_transaction=True)
        for name in applied:
            log.info("applied migration %s", name)
        return applied
    finally:
        try:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
        finally:
            await lock_conn.close()
