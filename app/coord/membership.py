"""Which pods are alive: each pod heartbeats into a Redis sorted set.

A pod is a member from its first heartbeat until it leaves (on SIGTERM) or until its last
heartbeat is older than the grace period (it vanished: SIGKILL, node loss). The grace period
keeps an ordinary restart from moving shards away and back: the restarted pod heartbeats under
the same name before the grace runs out.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from app.coord.redis_link import RedisLink

KEY = "cluster:members"
HANDOVER_KEY = "cluster:handover"

_FINISH_HANDOVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def member_name(pod_index: int, hostname: str) -> str:
    """A pod's stable name: sorts by pod index, the same across restarts of that pod."""
    return f"{pod_index:06d}:{hostname}"


class Membership:
    """Heartbeats and the live member list (raises RedisUnavailable when Redis is away)."""

    def __init__(self, link: RedisLink, me: str, grace: float) -> None:
        self.link = link
        self.me = me
        self.grace = grace
        #: Set by `leave`: from then on heartbeats are not sent, whoever calls them (the
        #: rebalancer and the REST budget both do), so a stopping pod stays out of the set.
        self.left = False

    async def heartbeat(self) -> None:
        """Say this pod is alive (nothing once it has left)."""
        if self.left:
            return
        now = time.time() * 1000
        await self.link.run(lambda r: r.zadd(KEY, {self.me: now}))

    async def members(self) -> list[str]:
        """Live members sorted by rank (pod index); forgets long-dead ones."""
        now = time.time() * 1000
        cutoff = now - self.grace * 1000

        async def read(r: Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.zremrangebyscore(KEY, "-inf", now - 10 * self.grace * 1000)
            pipe.zrangebyscore(KEY, cutoff, "+inf")
            return await pipe.execute()

        _, raw = await self.link.run(read)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in raw)

    async def leave(self) -> None:
        """Stop being a member at once and for good (graceful shutdown)."""
        self.left = True
        await self.link.run(lambda r: r.zrem(KEY, self.me))


class HandoverSlot:
    """The cluster-wide slot a shard changes hands through, one shard at a time.

    Handing shards over one at a time keeps at most one shard unowned at any moment. Each shard
    generation has its own slot (app/coord/generations.py), so a reshard's moves do not wait for
    the running generation's.
    """

    def __init__(self, link: RedisLink, key: str = HANDOVER_KEY) -> None:
        self.link = link
        self.key = key

    async def begin(self, shard_id: int, ttl: float = 15.0) -> bool:
        """Take the slot for one shard; False if another shard is in flight."""
        return bool(
            await self.link.run(
                lambda r: r.set(self.key, str(shard_id), nx=True, px=int(ttl * 1000))
            )
        )

    async def finish(self, shard_id: int) -> None:
        """The new owner has the shard running: free the slot."""
        await self.link.run(lambda r: r.eval(_FINISH_HANDOVER, 1, self.key, str(shard_id)))

    async def pending(self) -> bool:
        """Whether a handover is in flight."""
        return bool(await self.link.run(lambda r: r.exists(self.key)))
