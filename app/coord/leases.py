"""Shard leases: at most one process holds a shard, so Discord never sees two sessions for it.

Discord lets two connections identify as the same shard, and both then receive its events. A
pod therefore takes a lease in Redis before it connects a shard and renews it while it runs. Each
change of owner increments the shard's fencing token; a holder that finds the lease gone or
carrying another token stops that shard at once. A holder that cannot reach Redis for most of
the TTL also stops its shard, before the lease can expire and another pod take it. If Redis
loses its data, no lease is granted for one TTL after that (the epoch), so the old holders have
noticed and stopped before anyone else starts.

The epoch is checked inside the script that grants a lease, against Redis's own clock, so the
guard fails closed: a stale connection, a Redis that restarts again while a pod waits, or clocks
that differ between pods can delay a lease, never grant one early.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable, stop_tasks

log = logging.getLogger(__name__)

EPOCH_KEY = "cluster:epoch"

#: KEYS: lease, fence, epoch; ARGV: owner, ttl ms. Returns {GRANTED, fence}, {HELD, 0} or
#: {NEW_EPOCH, ms left}. The epoch key holds when Redis's data began (Redis's TIME, in ms):
#: missing means the data is new (a first start, or Redis lost everything) and starts it now.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local began = tonumber(redis.call('GET', KEYS[3]))
if not began then
  redis.call('SET', KEYS[3], now)
  began = now
end
local left = began + tonumber(ARGV[2]) - now
if left > 0 then return {2, left} end
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, fence = string.match(cur, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {0, tonumber(fence)}
  end
  return {1, 0}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
return {0, fence}
"""
GRANTED, HELD, NEW_EPOCH = 0, 1, 2
UNREACHABLE = -1

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _announce(shard_id: int, status: int, value: int) -> None:
    """Say once why a shard waits for its lease."""
    if status == NEW_EPOCH:
        log.info("redis holds no earlier leases: waiting %.1f s before taking any", value / 1000)
    elif status == HELD:
        log.info("shard %d is held by another process; waiting for its lease", shard_id)
    else:
        log.info("shard %d: redis is unreachable; waiting for it to take the lease", shard_id)


@dataclass(frozen=True, slots=True)
class Lease:
    """A held shard and the fencing token of this ownership."""

    shard_id: int
    fence: int


LostHandler = Callable[[int], Awaitable[None]]


class ShardLeases(Protocol):
    """Take, keep and give back shard leases."""

    async def acquire(self, shard_id: int, wait: float | None = None) -> Lease:
        """Take the shard's lease, waiting (at most `wait` seconds) while another holds it."""
        ...

    async def release(self, shard_id: int) -> None:
        """Give the lease back if it is still ours."""
        ...

    def held(self) -> dict[int, Lease]:
        """Shards held now."""
        ...

    async def start(self, on_lost: LostHandler) -> None:
        """Keep the leases renewed; `on_lost(shard_id)` is awaited for each one lost."""
        ...

    async def close(self) -> None:
        """Stop renewing and release everything."""
        ...


class LocalLeases:
    """A single process owns every shard it runs (the embedded default)."""

    def __init__(self) -> None:
        self._held: dict[int, Lease] = {}

    async def acquire(self, shard_id: int, wait: float | None = None) -> Lease:
        """Always granted."""
        lease = self._held.setdefault(shard_id, Lease(shard_id, 1))
        return lease

    async def release(self, shard_id: int) -> None:
        """Forget the shard."""
        self._held.pop(shard_id, None)

    def held(self) -> dict[int, Lease]:
        """Shards held now."""
        return dict(self._held)

    async def start(self, on_lost: LostHandler) -> None:
        """Nothing to renew."""

    async def close(self) -> None:
        """Release everything."""
        self._held.clear()


class RedisShardLeases:
    """Leases as Redis keys `shard:{id}:lease` = "owner|fence", renewed every ttl/3."""

    def __init__(self, link: RedisLink, owner: str, ttl: float = 15.0, prefix: str = "shard"):
        self.link = link
        self.owner = owner
        self.ttl = ttl
        self.prefix = prefix
        self._held: dict[int, Lease] = {}
        self._last_renewed = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._on_lost: LostHandler | None = None

    def _keys(self, shard_id: int) -> tuple[str, str]:
        return f"{self.prefix}:{shard_id}:lease", f"{self.prefix}:{shard_id}:fence"

    def _value(self, lease: Lease) -> str:
        return f"{self.owner}|{lease.fence}"

    async def acquire(self, shard_id: int, wait: float | None = None) -> Lease:
        """Take the shard's lease, waiting as long as it takes.

        It waits while another process holds it, while Redis is unreachable, and for one TTL
        after Redis lost its data (so that every old holder has noticed its lease is gone and
        stopped first; a cold start of the cluster pays it once).
        """
        lease_key, fence_key = self._keys(shard_id)
        ttl_ms = int(self.ttl * 1000)
        deadline = None if wait is None else time.monotonic() + wait
        delay = 0.05
        told: set[int] = set()
        while True:
            try:
                answer: list[int] = await self.link.run(
                    lambda r: r.eval(
                        _ACQUIRE, 3, lease_key, fence_key, EPOCH_KEY, self.owner, ttl_ms
                    )
                )
                status, value = int(answer[0]), int(answer[1])
            except RedisUnavailable:
                status, value = UNREACHABLE, 0
            if status == GRANTED:
                lease = Lease(shard_id, value)
                self._held[shard_id] = lease
                self._last_renewed = time.monotonic()
                return lease
            if status not in told:
                told.add(status)
                _announce(shard_id, status, value)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"shard {shard_id}'s lease was not free in time")
            pause = delay * (0.5 + random.random())
            if status == NEW_EPOCH:
                pause = value / 1000  # exactly the rest of the epoch, then ask again
            await asyncio.sleep(pause)
            delay = min(delay * 1.5, 1.0)

    async def release(self, shard_id: int) -> None:
        """Give the lease back if it is still ours."""
        lease = self._held.pop(shard_id, None)
        if lease is None:
            return
        lease_key, _ = self._keys(shard_id)
        try:
            await self.link.run(lambda r: r.eval(_RELEASE, 1, lease_key, self._value(lease)))
        except RedisUnavailable:
            log.warning("could not release shard %d's lease; it expires by itself", shard_id)

    def held(self) -> dict[int, Lease]:
        """Shards held now."""
        return dict(self._held)

    async def start(self, on_lost: LostHandler) -> None:
        """Start renewing; `on_lost(shard_id)` is awaited for each lease that is lost."""
        self._on_lost = on_lost
        if self._task is None:
            self._task = asyncio.create_task(self._renew_forever(), name="shard-lease-renewal")

    async def renew(self) -> list[int]:
        """Renew every held lease once; returns the shards whose lease was lost.

        A lease lives one TTL from the moment a renewal was sent (not answered). Once no
        renewal has succeeded for two thirds of the TTL, every shard is given up: another pod
        may take it within the last third. A failing call takes at most three attempts of
        one socket timeout (redis_link.py), which must fit in that last third: LEASE_TTL_S
        of 10 s or more (the default is 15) when Redis may stop answering without refusing.
        """
        lost: list[int] = []
        sent = time.monotonic()
        try:
            for shard_id, lease in list(self._held.items()):
                if not await self._renew_one(lease):
                    lost.append(shard_id)
            self._last_renewed = sent
        except RedisUnavailable:
            if time.monotonic() - self._last_renewed >= self.ttl * 2 / 3:
                lost = [s for s in self._held if s not in lost] + lost
        lost = [s for s in lost if s in self._held]  # one released meanwhile was not lost
        for shard_id in lost:
            del self._held[shard_id]
        return lost

    async def _renew_one(self, lease: Lease) -> bool:
        key, value = self._keys(lease.shard_id)[0], self._value(lease)
        ttl_ms = int(self.ttl * 1000)
        return bool(await self.link.run(lambda r: r.eval(_RENEW, 1, key, value, ttl_ms)))

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 6)
            for shard_id in await self.renew():
                log.error("lost the lease of shard %d: stopping it", shard_id)
                if self._on_lost is not None:
                    await self._on_lost(shard_id)

    async def close(self) -> None:
        """Stop renewing and release every lease."""
        task, self._task = self._task, None
        await stop_tasks(task)
        for shard_id in list(self._held):
            await self.release(shard_id)
