"""Coordination between processes: locks, caches and cooldowns, in Redis or in-process."""

from __future__ import annotations

from dataclasses import dataclass

from app.coord.cooldowns import Cooldowns, LocalCooldowns, RedisCooldowns
from app.coord.leaderboard_cache import LeaderboardCache, LocalLeaderboard, RedisLeaderboard
from app.coord.locks import AccountLocks, LocalLocks, RedisLocks
from app.coord.redis_link import RedisLink


@dataclass
class Coordination:
    """The coordination parts one process uses, all from Redis or all in-process."""

    locks: AccountLocks
    leaderboard: LeaderboardCache
    cooldowns: Cooldowns
    redis: RedisLink | None = None

    @classmethod
    def local(cls, lock_wait_ms: int = 2_000) -> Coordination:
        """In-process parts for the embedded single-process default."""
        return cls(LocalLocks(lock_wait_ms), LocalLeaderboard(), LocalCooldowns())

    @classmethod
    def from_redis(
        cls, url: str, lock_ttl_ms: int = 5_000, lock_wait_ms: int = 2_000, cache_ttl: int = 3_600
    ) -> Coordination:
        """Redis-backed parts shared by every process of the cluster."""
        link = RedisLink(url)
        return cls(
            RedisLocks(link, lock_ttl_ms, lock_wait_ms),
            RedisLeaderboard(link, cache_ttl),
            RedisCooldowns(link),
            link,
        )

    async def close(self) -> None:
        """Close the Redis connection, if any."""
        if self.redis is not None:
            await self.redis.close()
