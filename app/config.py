"""Settings from the environment (and an optional `.env` file).

Every setting has a safe default for the embedded single-machine run: a SQLite file under
./data, in-process coordination (no Redis) and the built-in sandbox (no token). Production sets
DATABASE_URL, REDIS_URL and DISCORD_TOKEN.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SQLITE_DEFAULT = "sqlite://data/bot.sqlite3"


class SettingConflict(ValueError):
    """Settings that cannot hold together; `setting` names the one to change."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def is_sqlite(url: str) -> bool:
    """True for the embedded SQLite database, False for PostgreSQL."""
    return url.startswith("sqlite://")


class Settings(BaseSettings):
    """All runtime settings. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = SQLITE_DEFAULT
    db_pool_min: int = Field(1, ge=1, le=100)
    db_pool_max: int = Field(10, ge=1, le=500)
    redis_url: str | None = None
    discord_token: str | None = None
    command_prefix: str = Field("!", min_length=1, max_length=5)
    message_content_intent: bool = True
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    shard_count: int | Literal["auto"] | None = None
    shard_ids: list[int] | None = None
    shards_per_pod: int | None = Field(None, ge=1, le=10_000)
    pod_index: int | None = Field(None, ge=0)
    ops_host: str = Field("127.0.0.1", min_length=1)
    ops_port: int = Field(8080, ge=0, le=65_535)
    identify_window_s: float = Field(5.0, gt=0, le=60)
    identify_min_remaining: int = Field(50, ge=0)
    lease_ttl_s: float = Field(15.0, ge=1, le=600)
    rebalance_grace_s: float = Field(60.0, ge=1, le=3600)
    #: How a shard's new owner gets its guilds (app/bot/handover.py).
    handover_mode: Literal["snapshot", "lazy", "eager", "identify"] = "snapshot"
    # Resharding with shard generations (app/bot/resharding.py).
    reshard_drain_s: float = Field(5.0, ge=1, le=600)
    reshard_prepare_timeout_s: float = Field(600.0, ge=5, le=86_400)
    reshard_auto: bool = False
    #: A file holding the wanted shard count (a ConfigMap mounted as a volume): pods follow it.
    shard_count_file: Path | None = None
    reshard_at: float = Field(0.8, gt=0, le=1)
    outbox_lease_s: float = Field(30.0, ge=1, le=600)
    #: The event loop of `python -m app run` (app/bot/runner.py).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    log_level: str = "INFO"
    migrations_dir: Path | None = None

    transfer_max: int = Field(1_000_000_000, ge=1, le=10**15)
    grant_max: int = Field(1_000_000_000, ge=1, le=10**15)
    lock_ttl_ms: int = Field(5_000, ge=100, le=600_000)
    lock_wait_ms: int = Field(2_000, ge=0, le=600_000)
    leaderboard_cache_ttl_s: int = Field(3_600, ge=10, le=7 * 86_400)
    # The deadline of a command (app/ops/deadline.py).
    clock_skew_s: float = Field(1.0, ge=0, le=60)
    prefix_command_max_age_s: float = Field(30.0, gt=0, le=3_600)
    command_timeout_s: float = Field(30.0, gt=0, le=840)
    # The cluster's REST budget (app/coord/rest_budget.py).
    rest_budget: bool = True
    rest_global_limit: int = Field(50, ge=1, le=100_000)
    rest_invalid_limit: int = Field(10_000, ge=10, le=1_000_000)
    # The moderators' web console (app/web).
    web_host: str = Field("127.0.0.1", min_length=1)
    web_port: int = Field(8081, ge=0, le=65_535)
    web_url: str = "http://127.0.0.1:8081"
    discord_client_id: str | None = None
    discord_client_secret: str | None = None
    discord_authorize_url: str = "https://discord.com/oauth2/authorize"
    web_session_ttl_s: int = Field(8 * 3_600, ge=60, le=30 * 86_400)
    web_access_ttl_s: float = Field(60.0, ge=0, le=60)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("shard_count")
    @classmethod
    def _positive_shards(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 100_000:
            raise ValueError("must be a whole number from 1 to 100000, or auto")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Checks across fields, made before anything connects anywhere."""
        if self.db_pool_min > self.db_pool_max:
            raise SettingConflict(
                "DB_POOL_MIN",
                f"{self.db_pool_min} is above DB_POOL_MAX ({self.db_pool_max})",
            )
        count = self.shard_count if isinstance(self.shard_count, int) else None
        if self.shards_per_pod is not None and count is None:
            raise SettingConflict("SHARDS_PER_POD", "needs a numeric SHARD_COUNT")
        if self.shard_ids is not None:
            self._check_shard_ids(self.shard_ids, count)
        return self

    @staticmethod
    def _check_shard_ids(ids: list[int], count: int | None) -> None:
        if count is None:
            raise SettingConflict("SHARD_IDS", "needs a numeric SHARD_COUNT")
        if not ids:
            raise SettingConflict("SHARD_IDS", "names no shard (leave it unset for all of them)")
        outside = sorted({i for i in ids if not 0 <= i < count})
        if outside:
            raise SettingConflict(
                "SHARD_IDS",
                f"shard(s) {', '.join(map(str, outside))} outside SHARD_COUNT={count}"
                f" (shards are numbered 0 to {count - 1})",
            )
        if len(set(ids)) != len(ids):
            raise SettingConflict("SHARD_IDS", "names a shard twice")

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file rather than PostgreSQL."""
        return is_sqlite(self.database_url)


def describe_error(error: ValidationError) -> str:
    """One line naming the first invalid variable and what is wrong with it."""
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, SettingConflict):
        return f"invalid setting {cause.setting}: {cause}"
    name = str(first["loc"][0]).upper() if first["loc"] else "settings"
    return f"invalid setting {name}: {first['msg']}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load the settings once; on invalid values exit with one clear line."""
    try:
        return Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        raise SystemExit(2) from None
