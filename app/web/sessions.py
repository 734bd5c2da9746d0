"""Where the console keeps sign-ins: Redis, or the database's `web_sessions` table.

A record is a small JSON object under a random key with an expiry. `take` reads and deletes
in one step, so a sign-in `state` can be used once only (a replayed callback finds nothing).
Without Redis (the embedded default) records live in the database beside the cases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as redis

from app.db.models import WebSession


class Store(Protocol):
    """Expiring JSON records by key."""

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds."""

    async def get(self, key: str) -> dict[str, Any] | None:
        """The record, None when missing or expired."""

    async def take(self, key: str) -> dict[str, Any] | None:
        """The record, deleted in the same step (None when missing or expired)."""

    async def close(self) -> None:
        """Release connections."""


class RedisStore:
    """Records in Redis under `web:<key>`, expired by Redis itself."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds."""
        await self.client.set(f"web:{key}", json.dumps(value), px=int(ttl * 1000))

    async def get(self, key: str) -> dict[str, Any] | None:
        """The record, None when missing or expired."""
        return _loaded(await self.client.get(f"web:{key}"))

    async def take(self, key: str) -> dict[str, Any] | None:
        """The record, deleted atomically (GETDEL)."""
        return _loaded(await self.client.getdel(f"web:{key}"))

    async def close(self) -> None:
        """Close the client."""
        await self.client.aclose()


class DatabaseStore:
    """Records in the `web_sessions` table (the embedded default: no Redis)."""

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds (expired records are swept here)."""
        now = datetime.now(UTC)
        await WebSession.filter(expires_at__lte=now).delete()
        await WebSession.update_or_create(
            {"data": value, "expires_at": now + timedelta(seconds=ttl)}, key=key
        )

    async def get(self, key: str) -> dict[str, Any] | None:
        """The record, None when missing or expired."""
        row = await WebSession.get_or_none(key=key, expires_at__gt=datetime.now(UTC))
        return dict(row.data) if row else None

    async def take(self, key: str) -> dict[str, Any] | None:
        """The record, deleted: of two callers taking it at once, one gets it."""
        found = await self.get(key)
        if found is None or await WebSession.filter(key=key).delete() != 1:
            return None
        return found

    async def close(self) -> None:
        """Nothing to release (the database is the caller's)."""


def _loaded(raw: bytes | str | None) -> dict[str, Any] | None:
    return json.loads(raw) if raw else None


def open_store(redis_url: str | None) -> Store:
    """Redis when configured, else the database."""
    return RedisStore(redis_url) if redis_url else DatabaseStore()
