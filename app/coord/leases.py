"""Shard leases: at most one process holds a shard, so Discord never sees two sessions for it.

Discord lets two connections identify as the same shard, and both then receive its events. A
pod therefore takes a lease in Redis before it connects a shard and renews it while it runs. Each
change of owner increments the shard's fencing token; a holder that finds the lease gone or
carrying another token stops that shard at once. A holder that cannot reach Redis for most of
the TTL also stops its shard, before the lease can expire and another pod take it. If Redis
loses its data, no lease is granted for one TTL after that (the epoch), so the old holders have
noticed and stopped before anyone else starts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

EPOCH_KEY = "cluster:epoch"

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, fence = string.match(cur, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(fence)
  end
  return -1
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
return fence
"""

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


@dataclass(frozen=True, slots=True)
class Lease:
    """A held shard and the fencing token of this ownership."""

    shard_id: int
    fence: int


LostHandler = Callable[[int], Awaitable[None]]


class ShardLeases(Protocol):
    """Take, keep and give back shard leases."""

    async def acquire(self, shard_id: int, wait: float | None = None) -> Lease: ...
    async def release(self, shard_id: int) -> None: ...
    def held(self) -> dict[int, Lease]: ...
    async def start(self, on_lost: LostHandler) -> None: ...
    async def close(self) -> None: ...


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

    async def _wait_out_a_new_epoch(self) -> None:
        """After Redis lost its data (or on a cluster's very first start), wait one TTL.

        Leases and fencing counters are gone then, while the old holders still run their
        shards until their next renewal finds the lease missing. Nobody takes a lease until a
        full TTL after the epoch began, so every old holder has stopped first. A cold start of
        the whole cluster pays this once.
        """
        try:
            await self.link.run(lambda r: r.set(EPOCH_KEY, int(time.time() * 1000), nx=True))
            began = int(await self.link.run(lambda r: r.get(EPOCH_KEY)) or 0) / 1000
        except RedisUnavailable:
            return
        remaining = began + self.ttl - time.time()
        if remaining > 0:
            log.info("redis holds no earlier leases: waiting %.1f s before taking any", remaining)
            await asyncio.sleep(remaining)

    async def acquire(self, shard_id: int, wait: float | None = None) -> Lease:
        """Take the shard's lease, waiting while another process holds it."""
        await self._wait_out_a_new_epoch()
        lease_key, fence_key = self._keys(shard_id)
        deadline = None if wait is None else time.monotonic() + wait
        delay = 0.05
        announced = False
        while True:
            try:
                fence = await self.link.run(
                    lambda r: r.eval(
                        _ACQUIRE, 2, lease_key, fence_key, self.owner, int(self.ttl * 1000)
                    )
                )
            except RedisUnavailable:
                fence = -1
            if fence >= 0:
                lease = Lease(shard_id, int(fence))
                self._held[shard_id] = lease
                self._last_renewed = time.monotonic()
                return lease
            if not announced:
                log.info("shard %d is held by another process; waiting for its lease", shard_id)
                announced = True
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"shard {shard_id}'s lease was not free in time")
            await asyncio.sleep(delay * (0.5 + random.random()))
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
        """Renew every held lease once; returns the shards whose lease was lost."""
        lost: list[int] = []
        try:
            for shard_id, lease in list(self._held.items()):
                key, value = self._keys(shard_id)[0], self._value(lease)
                ok = await self.link.run(
                    lambda r, k=key, v=value: r.eval(_RENEW, 1, k, v, int(self.ttl * 1000))
                )
                if not ok:
                    lost.append(shard_id)
            self._last_renewed = time.monotonic()
        except RedisUnavailable:
            # Stop before the lease can expire: after 2/3 of the TTL without a renewal, another
            # pod may take the shard within the last third.
            if time.monotonic() - self._last_renewed > self.ttl * 2 / 3:
                lost = [s for s in self._held if s not in lost] + lost
        for shard_id in lost:
            self._held.pop(shard_id, None)
        return lost

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 6)
            for shard_id in await self.renew():
                log.error("lost the lease of shard %d: stopping it", shard_id)
                if self._on_lost is not None:
                    await self._on_lost(shard_id)

    async def close(self) -> None:
        """Stop renewing and release every lease."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for shard_id in list(self._held):
            await self.release(shard_id)
