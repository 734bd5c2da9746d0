"""Open and close the database: Tortoise on PostgreSQL (asyncpg) or the embedded SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE

MODELS_MODULE = "app.db.models"

# Enforced in the database on SQLite, where Tortoise cannot emit CHECK constraints and
# ALTER TABLE cannot add them; PostgreSQL gets real CHECKs from the migrations.
_SQLITE_EXTRAS = (
    "CREATE INDEX IF NOT EXISTS members_leaderboard_idx ON members (guild_id, coins DESC, user_id)",
    "CREATE INDEX IF NOT EXISTS cases_expiring_idx ON cases (expires_at)"
    " WHERE state = 'active' AND expires_at IS NOT NULL",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {name}_{event.lower()} BEFORE {event} ON {table}"
        f" WHEN NOT ({check}) BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
        for name, table, check in (
            ("members_coins_range", "members", "NEW.coins >= 0 AND NEW.coins <= 1000000000000000"),
            ("members_xp_nonneg", "members", "NEW.xp >= 0"),
            ("ledger_amount_pos", "ledger", "NEW.amount > 0"),
            ("ledger_balance_nonneg", "ledger", "NEW.balance_after >= 0"),
            ("cases_number_pos", "cases", "NEW.number > 0"),
            (
                "guild_settings_xp_range",
                "guild_settings",
                "NEW.xp_min >= 0 AND NEW.xp_max >= NEW.xp_min",
            ),
        )
        for event in ("INSERT", "UPDATE")
    ),
)


def is_sqlite(url: str) -> bool:
    """True for the embedded SQLite database."""
    return url.startswith("sqlite://")


def tortoise_config(url: str, pool_min: int = 1, pool_max: int = 10) -> dict[str, Any]:
    """Tortoise configuration for one database; PostgreSQL also registers aerich's model."""
    connection = expand_db_url(url)
    models = [MODELS_MODULE]
    if not is_sqlite(url):
        connection["credentials"]["min_size"] = pool_min
        connection["credentials"]["max_size"] = pool_max
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
        for statement in _SQLITE_EXTRAS:
            await conn.execute_script(statement)


async def close_database() -> None:
    """Close every Tortoise connection."""
    await Tortoise.close_connections()
