"""The checked-in aerich migrations: they match the models and may run concurrently."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db.migrate import make_migration, run_migrations
from app.db.postgres import asyncpg_dsn
from app.db.schema import MIGRATIONS_DIR
from tests.services import pg_base_url
from testsupport.databases import create_database, drop_database

pytestmark = pytest.mark.slow


@pytest.fixture
async def fresh_db() -> AsyncIterator[str]:
    base = pg_base_url()
    url = await create_database(base, "mig")
    yield url
    await drop_database(base, url)


async def test_migrated_schema_matches_models(fresh_db: str, tmp_path: Path) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location)
    applied = await run_migrations(fresh_db, location)
    assert applied == sorted(p.name for p in (location / "models").glob("*.py"))
    assert await make_migration(fresh_db, "pending", location) == ""  # no pending model changes
    conn = await asyncpg.connect(asyncpg_dsn(fresh_db))
    try:
        checks = {
            r["conname"]
            for r in await conn.fetch("SELECT conname FROM pg_constraint WHERE contype = 'c'")
        }
        assert {"members_coins_range", "ledger_amount_pos", "cases_number_pos"} <= checks
        indexes = {
            r["indexname"]: r["indexdef"] for r in await conn.fetch("SELECT * FROM pg_indexes")
        }
        assert "coins DESC" in indexes["members_leaderboard_idx"]
        assert "WHERE" in indexes["cases_outbox_idx"] and "WHERE" in indexes["effects_due_idx"]
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO members (guild_id, user_id, display_name, coins, xp, level, version,"
                " first_seen) VALUES (1, 1, '', -1, 0, 0, 0, now())"
            )
    finally:
        await conn.close()


async def test_two_concurrent_migrate_runs_both_succeed(fresh_db: str) -> None:
    env = {**os.environ, "DATABASE_URL": fresh_db}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    printed = sorted(out.decode().strip() for out, _ in outputs)
    assert printed[0] == "applied 0 migration(s)"  # the second waited, then had nothing to do
    migrations = len(list((MIGRATIONS_DIR / "models").glob("*.py")))
    assert printed[1].startswith(f"applied {migrations} migration(s)")
    conn = await asyncpg.connect(asyncpg_dsn(fresh_db))
    try:
        versions = await conn.fetch("SELECT version FROM aerich")
        assert len(versions) == len(list((MIGRATIONS_DIR / "models").glob("*.py")))
    finally:
        await conn.close()
