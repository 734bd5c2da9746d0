"""A cheap first filter for cooldowns (XP per message): most chat never reaches the database.

The database's conditional update stays the authority; this only saves work. When Redis is
away every call says "go ahead" and the database decides.
"""

from __future__ import annotations

import time
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable


class Cooldowns(Protocol):
    """try_start(key, seconds) -> False while `key` is still cooling down."""

    async def try_start(self, key: str, seconds: float) -> bool:
        """Start `key`'s cooldown of `seconds`; False while it is still running."""
        ...


class LocalCooldowns:
    """In-process cooldowns with a bounded size."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._until: dict[str, float] = {}
        self.max_keys = max_keys

    async def try_start(self, key: str, seconds: float) -> bool:
        """Start the cooldown unless it is running."""
        now = time.monotonic()
        if self._until.get(key, 0.0) > now:
            return False
        if len(self._until) >= self.max_keys:
            self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[key] = now + seconds
        return True


class RedisCooldowns:
    """SET NX PX keys shared by every process."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    async def try_start(self, key: str, seconds: float) -> bool:
        """Start the cooldown unless another process already did."""
        try:
            px = max(1, int(seconds * 1000))
            [started] = await self.link.direct(("SET", f"cd:{key}", b"1", "NX", "PX", px))
            return bool(started)
        except RedisUnavailable:
            return True
