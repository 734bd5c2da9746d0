"""Coordination between processes: locks, caches, cooldowns, reply claims and shard ownership.

Every part has a Redis implementation (shared by the pods of a cluster) and an in-process one
(the embedded single-process default). `Coordination.from_settings` makes that choice once, for
every part; nothing else asks whether Redis is configured.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, replace

from app.config import Settings
from app.coord.cooldowns import Cooldowns, LocalCooldowns, RedisCooldowns
from app.coord.generations import Generation
from app.coord.identify import IdentifyQueue, LocalIdentifyQueue, RedisIdentifyQueue
from app.coord.leaderboard_cache import LeaderboardCache, LocalLeaderboard, RedisLeaderboard
from app.coord.leases import LocalLeases, RedisShardLeases, ShardLeases
from app.coord.locks import AccountLocks, LocalLocks, RedisLocks, WaitObserver
from app.coord.membership import HandoverSlot, Membership, member_name
from app.coord.redis_link import RedisLink
from app.coord.replies import LocalReplyClaims, RedisReplyClaims, ReplyClaims
from app.coord.rest_budget import LocalRestBudget, RedisRestBudget, RestBudget, RestPolicy
from app.coord.sessions import LocalSessionStore, RedisSessionStore, SessionStore
from app.coord.shard_plan import pod_index
from app.coord.snapshots import LocalSnapshotStore, RedisSnapshotStore, SnapshotStore


def owner_name() -> str:
    """This process's name in leases: pod (host) name, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Coordination:
    """The coordination parts one process uses, all from Redis or all in-process."""

    locks: AccountLocks
    leaderboard: LeaderboardCache
    cooldowns: Cooldowns
    identify: IdentifyQueue
    leases: ShardLeases
    sessions: SessionStore
    #: Guild state a releasing process leaves for a shard's next owner.
    snapshots: SnapshotStore
    #: Who answers a prefix command's message (one reply however often it is delivered).
    replies: ReplyClaims
    #: The REST budget of the bot token, shared by every pod.
    rest: RestBudget
    #: The live pod membership (live rebalancing); only with Redis.
    membership: Membership | None = None
    #: The handover slot of the shards these parts run; only with Redis.
    slot: HandoverSlot | None = None
    redis: RedisLink | None = None

    @classmethod
    def local(
        cls,
        lock_wait_ms: int = 2_000,
        identify_window_s: float = 5.0,
        on_lock_wait: WaitObserver | None = None,
        rest_policy: RestPolicy | None = None,
    ) -> Coordination:
        """In-process parts for the embedded single-process default."""
        leaderboard = LocalLeaderboard()
        return cls(
            locks=LocalLocks(leaderboard, lock_wait_ms, on_wait=on_lock_wait),
            leaderboard=leaderboard,
            cooldowns=LocalCooldowns(),
            identify=LocalIdentifyQueue(identify_window_s),
            leases=LocalLeases(),
            sessions=LocalSessionStore(),
            snapshots=LocalSnapshotStore(),
            replies=LocalReplyClaims(),
            rest=LocalRestBudget(rest_policy or RestPolicy()),
        )

    @classmethod
    def from_redis(
        cls,
        url: str,
        *,
        lock_ttl_ms: int = 5_000,
        lock_wait_ms: int = 2_000,
        cache_ttl: int = 3_600,
        identify_window_s: float = 5.0,
        lease_ttl_s: float = 15.0,
        owner: str | None = None,
        member: str | None = None,
        grace_s: float = 60.0,
        on_lock_wait: WaitObserver | None = None,
        rest_policy: RestPolicy | None = None,
    ) -> Coordination:
        """Redis-backed parts shared by every process of the cluster."""
        link = RedisLink(url)
        membership = Membership(link, member or member_name(0, socket.gethostname()), grace_s)
        leaderboard = RedisLeaderboard(link, cache_ttl)
        return cls(
            locks=RedisLocks(link, leaderboard, lock_ttl_ms, lock_wait_ms, on_wait=on_lock_wait),
            leaderboard=leaderboard,
            cooldowns=RedisCooldowns(link),
            identify=RedisIdentifyQueue(link, identify_window_s),
            leases=RedisShardLeases(link, owner or owner_name(), lease_ttl_s),
            sessions=RedisSessionStore(link),
            snapshots=RedisSnapshotStore(link),
            replies=RedisReplyClaims(link),
            rest=RedisRestBudget(link, rest_policy or RestPolicy(), membership),
            membership=membership,
            slot=HandoverSlot(link),
            redis=link,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, on_lock_wait: WaitObserver | None = None
    ) -> Coordination:
        """Redis when REDIS_URL is set, else in-process: the one place this is decided."""
        policy = RestPolicy.of(settings)
        if settings.redis_url is None:
            return cls.local(
                settings.lock_wait_ms, settings.identify_window_s, on_lock_wait, policy
            )
        index = settings.pod_index if settings.pod_index is not None else pod_index()
        return cls.from_redis(
            settings.redis_url,
            lock_ttl_ms=settings.lock_ttl_ms,
            lock_wait_ms=settings.lock_wait_ms,
            cache_ttl=settings.leaderboard_cache_ttl_s,
            identify_window_s=settings.identify_window_s,
            lease_ttl_s=settings.lease_ttl_s,
            member=member_name(index, socket.gethostname()),
            grace_s=settings.rebalance_grace_s,
            on_lock_wait=on_lock_wait,
            rest_policy=policy,
        )

    def for_generation(self, generation: Generation) -> Coordination:
        """These parts with one shard generation's own leases, sessions, snapshots and slot.

        Their keys are apart from every other generation's.

        Gen 0's are the parts themselves; without Redis there are no other generations.
        """
        if generation.number == 0 or self.redis is None:
            return self
        leases = self.leases
        assert isinstance(leases, RedisShardLeases)
        prefix = generation.key_prefix
        return replace(
            self,
            leases=RedisShardLeases(self.redis, leases.owner, leases.ttl, prefix=prefix),
            sessions=RedisSessionStore(self.redis, prefix=prefix),
            snapshots=RedisSnapshotStore(self.redis, prefix=prefix),
            slot=HandoverSlot(self.redis, generation.handover_key),
        )

    async def close(self) -> None:
        """Stop renewing leases and close the Redis connection, if any."""
        await self.leases.close()
        if self.redis is not None:
            await self.redis.close()
