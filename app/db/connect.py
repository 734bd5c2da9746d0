"""Open and close the database: Tortoise on PostgreSQL (asyncpg) or the embedded SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from app.config import Settings, is_sqlite
from app.db.schema import APPLIED_QUERY, MIGRATIONS_DIR, schema_problem, shipped_migrations

MODELS_MODULE = "app.db.models"

# Enforced in the database on SQLite, where Tortoise cannot emit CHECK constraints and
# ALTER TABLE cannot add them; PostgreSQL gets real CHECKs from the migrations.
_SQLITE_EXTRAS = (
    "CREATE INDEX IF NOT EXISTS members_leaderboard_idx ON members (guild_id, coins DESC, user_id)",
    "CREATE INDEX IF NOT EXISTS cases_outbox_idx ON cases (guild_id, next_attempt_at)"
    " WHERE pending",
    "CREATE INDEX IF NOT EXISTS effects_due_idx ON effects (until)"
    " WHERE case_id IS NOT NULL AND until IS NOT NULL",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {name}_{event.lower()} BEFORE {event} ON {table}"
        f" WHEN NOT ({check}) BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
        for name, table, check in (
            ("members_coins_range", "members", "NEW.coins >= 0 AND NEW.coins <= 1000000000000000"),
            ("members_xp_nonneg", "members", "NEW.xp >= 0"),
            ("ledger_amount_pos", "ledger", "NEW.amount > 0"),
            ("ledger_balance_nonneg", "ledger", "NEW.balance_after >= 0"),
            ("cases_number_pos", "cases", "NEW.number > 0"),
            ("cases_attempts_nonneg", "cases", "NEW.attempts >= 0"),
            (
                "cases_delete_message_range",
                "cases",
                "NEW.delete_message_s BETWEEN 0 AND 604800",
            ),
            (
                "guild_settings_xp_range",
                "guild_settings",
                "NEW.xp_min >= 0 AND NEW.xp_max >= NEW.xp_min",
            ),
        )
        for event in ("INSERT", "UPDATE")
    ),
)


# An embedded database made by an earlier version: the columns migration 2 added (SQLite has no
# aerich migrations; generate_schemas creates missing tables, never missing columns).
_SQLITE_NEW_COLUMNS = {
    "cases": (
        ("dm_state", "VARCHAR(16) NOT NULL DEFAULT 'none'"),
        ("action_state", "VARCHAR(16) NOT NULL DEFAULT 'none'"),
        ("action_note", "VARCHAR(1024) NOT NULL DEFAULT ''"),
        ("lift_state", "VARCHAR(16) NOT NULL DEFAULT 'none'"),
        ("delete_message_s", "INT NOT NULL DEFAULT 0"),
        ("pending", "INT NOT NULL DEFAULT 0"),
        ("attempts", "INT NOT NULL DEFAULT 0"),
        ("next_attempt_at", "TIMESTAMP"),
    ),
    "case_edits": (("idempotency_key", "VARCHAR(120)"),),
}
_SQLITE_UPGRADE = (
    "CREATE UNIQUE INDEX IF NOT EXISTS case_edits_key ON case_edits (idempotency_key)",
    "UPDATE cases SET dm_state = CASE dm_delivered WHEN 1 THEN 'delivered'"
    " WHEN 0 THEN 'undelivered' ELSE 'none' END",
    "UPDATE cases SET action_state = 'applied'"
    " WHERE action IN ('timeout', 'untimeout', 'kick', 'ban', 'tempban', 'unban')",
    # The newest active ban (timeout) of each member holds it, unless a later case ended it.
    "INSERT INTO effects (guild_id, target_id, kind, case_id, until, updated_at)"
    " SELECT guild_id, target_id, kind, id, expires_at, CURRENT_TIMESTAMP FROM ("
    "  SELECT c.*, CASE WHEN c.action = 'timeout' THEN 'timeout' ELSE 'ban' END AS kind,"
    "   ROW_NUMBER() OVER (PARTITION BY c.guild_id, c.target_id,"
    "    c.action = 'timeout' ORDER BY c.number DESC) AS newest"
    "  FROM cases c WHERE c.state = 'active' AND c.action IN ('timeout', 'ban', 'tempban')"
    "   AND NOT EXISTS (SELECT 1 FROM cases e WHERE e.guild_id = c.guild_id"
    "    AND e.target_id = c.target_id AND e.number > c.number AND (e.action = 'unban'"
    "    OR (c.action = 'timeout' AND e.action IN ('untimeout', 'kick', 'ban', 'tempban'))))"
    " ) WHERE newest = 1",
    "UPDATE cases SET state = 'expired' WHERE state = 'active'"
    " AND action IN ('timeout', 'ban', 'tempban')"
    " AND id NOT IN (SELECT case_id FROM effects WHERE case_id IS NOT NULL)",
)


async def keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset of a connection given back: nothing beyond asyncpg's own rollback.

    asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    after every use, one more round trip per query outside a transaction (Tortoise takes a
    pooled connection per query). The bot keeps no session state: no SET outside a
    transaction, no LISTEN, no advisory locks, no cursors. asyncpg still rolls back a
    transaction left open and drops listeners before calling this.
    """


def tortoise_config(url: str, pool_min: int = 1, pool_max: int = 10) -> dict[str, Any]:
    """Tortoise configuration for one database; PostgreSQL also registers aerich's model."""
    connection = expand_db_url(url)
    models = [MODELS_MODULE]
    if not is_sqlite(url):
        connection["credentials"]["min_size"] = pool_min
        connection["credentials"]["max_size"] = pool_max
        connection["credentials"]["reset"] = keep_session
        models.append("aerich.models")
    return {
        "connections": {"default": connection},
        "apps": {"models": {"models": models, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


async def open_database(url: str, pool_min: int = 1, pool_max: int = 10) -> None:
    """Initialise Tortoise; on SQLite also create the schema from the models.

    PostgreSQL schemas come only from migrations (`python -m app migrate`).
    """
    if is_sqlite(url):
        path = url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Tortoise 1.1 caches each model's INSERT SQL per connection *name*, not per dialect: a
    # process that opened SQLite before PostgreSQL would send `?` placeholders to PostgreSQL.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(url, pool_min, pool_max))
    if is_sqlite(url):
        await Tortoise.generate_schemas(safe=True)
        conn = connections.get("default")
        await _upgrade_sqlite(conn)
        for statement in _SQLITE_EXTRAS:
            await conn.execute_script(statement)


async def _upgrade_sqlite(conn: Any) -> None:
    """Bring an embedded database from before migration 2 up to the models (once)."""
    _, rows = await conn.execute_query("PRAGMA table_info(cases)")
    if "pending" in {row["name"] for row in rows}:
        return
    for table, columns in _SQLITE_NEW_COLUMNS.items():
        for name, kind in columns:
            await conn.execute_script(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    for statement in _SQLITE_UPGRADE:
        await conn.execute_script(statement)


async def close_database() -> None:
    """Close every Tortoise connection."""
    await Tortoise.close_connections()


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Connections of the PostgreSQL pool (SQLite has none)."""

    size: int
    idle: int
    maximum: int


class Database:
    """The process's database: a Tortoise context of its own, opened once, closed once.

    `open` enters the context in the calling task, so every task created from it afterwards
    (a bot's shards and handlers) sees the database; work from other task trees (the ops
    server's probes) runs inside `with database.context:`.
    """

    def __init__(
        self, url: str, context: TortoiseContext, migrations: Path = MIGRATIONS_DIR
    ) -> None:
        self.url = url
        self.context = context
        #: Where the migrations this database must have applied are (PostgreSQL).
        self.migrations = migrations

    @classmethod
    async def open(
        cls, url: str, pool_min: int = 1, pool_max: int = 10, migrations: Path = MIGRATIONS_DIR
    ) -> Database:
        """Open the database in a fresh Tortoise context, entered for the calling task."""
        context = TortoiseContext()
        context.__enter__()
        await open_database(url, pool_min, pool_max)
        return cls(url, context, migrations)

    @classmethod
    async def open_configured(cls, settings: Settings) -> Database:
        """Open the database `settings` name, with their pool size and migrations."""
        return await cls.open(
            settings.database_url,
            settings.db_pool_min,
            settings.db_pool_max,
            settings.migrations_dir or MIGRATIONS_DIR,
        )

    async def problem(self) -> str | None:
        """Why the database cannot serve (None when it can); raises when it does not answer.

        On PostgreSQL a schema behind the head migration is a reason (SQLite makes its own).
        """
        with self.context:
            conn = connections.get("default")
            if is_sqlite(self.url):
                await conn.execute_query("SELECT 1")
                return None
            try:
                rows = await conn.execute_query_dict(APPLIED_QUERY)
            except OperationalError as error:
                if "does not exist" not in str(error):  # aerich's table (no schema at all)
                    raise
                return schema_problem(None, [])
        applied = {row["version"] for row in rows}
        return schema_problem(applied, shipped_migrations(self.migrations))

    def pool_stats(self) -> PoolStats | None:
        """The connection pool's figures (None on SQLite)."""
        with self.context:
            pool = getattr(connections.get("default"), "_pool", None)
        if pool is None:
            return None
        return PoolStats(pool.get_size(), pool.get_idle_size(), pool.get_max_size())

    async def close(self) -> None:
        """Close every connection of this context."""
        await self.context.close_connections()
