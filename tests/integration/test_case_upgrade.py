"""Cases recorded before the effect model enter it: PostgreSQL (migration 2) and SQLite.

Member 1: ban #1, unban #2, ban #3 (the old model left #1 active); member 2: a running tempban
whose DM arrived (#4); member 3: timeout #5 then kick #6; member 4: a warning whose DM did not
arrive (#7). After the upgrade #3 and #4 hold bans, #1 and #5 have ended, the Discord actions
count as applied and DM delivery is kept.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.db.connect import Database
from app.db.migrate import run_migrations
from app.db.postgres import asyncpg_dsn
from app.db.schema import MIGRATIONS_DIR
from tests.conftest import OpenDatabase, run_in_thread
from tests.services import pg_base_url
from testsupport.databases import create_database, drop_database

pytestmark = pytest.mark.slow
G = 5
NOW = datetime.now(UTC)
LATER = NOW + timedelta(days=1)
# number, action, member, expires_at, dm_delivered
OLD = [
    (1, "ban", 1, None, None),
    (2, "unban", 1, None, None),
    (3, "ban", 1, None, None),
    (4, "tempban", 2, LATER, True),
    (5, "timeout", 3, NOW + timedelta(hours=1), None),
    (6, "kick", 3, None, None),
    (7, "warn", 4, None, False),
]
EXPECTED_STATES = ["expired", "active", "active", "active", "expired", "active", "active"]
EXPECTED_ACTIONS = ["applied"] * 6 + ["none"]
EXPECTED_DMS = ["none", "none", "none", "delivered", "none", "none", "undelivered"]


def expected_effects(until: Any) -> set[tuple[int, str, int, Any]]:
    """(member, kind, case number, until) of the live effects."""
    return {(1, "ban", 3, None), (2, "ban", 4, until)}


async def test_postgres_migration_moves_old_cases_into_the_effect_model(tmp_path: Path) -> None:
    base = pg_base_url()
    url = await create_database(base, "upg")
    try:
        location = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS_DIR, location)
        later = sorted((location / "models").glob("*.py"))[2:]
        for path in later:  # migrate to the schema before the effect model
            path.rename(tmp_path / path.name)
        await run_migrations(url, location)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.executemany(
                "INSERT INTO cases (guild_id, number, action, target_id, moderator_id, reason,"
                " created_at, expires_at, state, dm_delivered) VALUES"
                " ($1, $2, $3, $4, 9, '', now(), $5, 'active', $6)",
                [(G, n, a, m, e, d) for n, a, m, e, d in OLD],
            )
            for path in later:
                (tmp_path / path.name).rename(path)
            await run_migrations(url, location)
            rows = await conn.fetch(
                "SELECT state, action_state, dm_state FROM cases ORDER BY number"
            )
            effects = await conn.fetch(
                "SELECT e.target_id, e.kind, c.number, e.until FROM effects e"
                " JOIN cases c ON c.id = e.case_id"
            )
            edits = await conn.fetchval("SELECT count(*) FROM case_edits")
        finally:
            await conn.close()
    finally:
        await drop_database(base, url)
    assert [r["state"] for r in rows] == EXPECTED_STATES
    assert [r["action_state"] for r in rows] == EXPECTED_ACTIONS
    assert [r["dm_state"] for r in rows] == EXPECTED_DMS
    assert {tuple(e) for e in effects} == expected_effects(LATER)
    assert edits == 2  # the two cases that ended say so in their history


OLD_SQLITE_TABLES = """
CREATE TABLE cases (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, guild_id BIGINT NOT NULL,
  number INT NOT NULL, action VARCHAR(16) NOT NULL, target_id BIGINT NOT NULL,
  moderator_id BIGINT NOT NULL, reason VARCHAR(1024) NOT NULL DEFAULT '',
  created_at TIMESTAMP NOT NULL, expires_at TIMESTAMP, state VARCHAR(16) NOT NULL DEFAULT 'active',
  dm_delivered INT, idempotency_key VARCHAR(120) UNIQUE, UNIQUE (guild_id, number));
CREATE TABLE case_edits (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, editor_id BIGINT,
  field VARCHAR(16) NOT NULL, old_value VARCHAR(1024) NOT NULL, new_value VARCHAR(1024) NOT NULL,
  note VARCHAR(1024) NOT NULL DEFAULT '', created_at TIMESTAMP NOT NULL,
  case_id BIGINT NOT NULL REFERENCES cases (id) ON DELETE RESTRICT);
"""


def test_sqlite_file_from_before_is_upgraded_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SQLITE_TABLES)
        db.executemany(
            "INSERT INTO cases (guild_id, number, action, target_id, moderator_id, created_at,"
            " expires_at, dm_delivered) VALUES (?, ?, ?, ?, 9, ?, ?, ?)",
            [
                (G, n, a, m, NOW.isoformat(), e.isoformat() if e else None, d)
                for n, a, m, e, d in OLD
            ],
        )

    async def upgraded() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        database = await Database.open(f"sqlite://{path}")  # upgrades, as the bot would
        await database.close()
        OpenDatabase.invalidate()  # that init rebuilt every model's queries for SQLite
        with sqlite3.connect(path) as db:
            cases = db.execute(
                "SELECT state, action_state, dm_state FROM cases ORDER BY number"
            ).fetchall()
            effects = db.execute(
                "SELECT e.target_id, e.kind, c.number, e.until FROM effects e"
                " JOIN cases c ON c.id = e.case_id"
            ).fetchall()
        return cases, effects

    cases, effects = run_in_thread(upgraded())
    assert [c[0] for c in cases] == EXPECTED_STATES
    assert [c[1] for c in cases] == EXPECTED_ACTIONS
    assert [c[2] for c in cases] == EXPECTED_DMS
    assert {tuple(e) for e in effects} == expected_effects(LATER.isoformat())
    again = run_in_thread(upgraded())  # opening it again changes nothing
    assert again == (cases, effects)
