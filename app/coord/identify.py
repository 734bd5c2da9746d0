"""The identify queue: Discord allows one IDENTIFY per 5 s per bucket (shard_id % max_concurrency)
across every process of the bot, and invalidates sessions (op 9) beyond that.

A shard takes its bucket before IDENTIFY and holds it until READY or failure. On release the
bucket stays closed for `window` more seconds. Counting the window from the release (which comes
after the identify reached Discord) rather than from the grant costs the READY latency per
identify, and means that no scheduling delay between the grant and the send can ever bring two
identifies of one bucket closer than `window`, in this pod or across pods. Buckets are
independent: with max_concurrency 4, four shards identify at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

HOLD_TTL = 60.0  # a holder that died frees its bucket after this long

_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


@dataclass(slots=True)
class Ticket:
    """Permission to identify one shard, held until READY or failure."""

    shard_id: int
    bucket: int
    token: str


class IdentifyQueue(Protocol):
    """acquire before IDENTIFY, release on READY or failure."""

    async def acquire(self, shard_id: int, max_concurrency: int) -> Ticket: ...
    async def release(self, ticket: Ticket) -> None: ...


class LocalIdentifyQueue:
    """The same rule inside one process (the embedded default)."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._locks: dict[int, asyncio.Lock] = {}
        self._open_at: dict[int, float] = {}

    async def acquire(self, shard_id: int, max_concurrency: int) -> Ticket:
        """Wait for the shard's bucket, then for its window."""
        bucket = shard_id % max(1, max_concurrency)
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        await lock.acquire()
        try:
            delay = self._open_at.get(bucket, 0.0) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the rate limit itself, not synchronisation
        except BaseException:  # cancelled while waiting: the bucket must not stay taken
            lock.release()
            raise
        return Ticket(shard_id, bucket, "")

    async def release(self, ticket: Ticket) -> None:
        """Free the bucket; it reopens `window` seconds from now."""
        lock = self._locks[ticket.bucket]
        if lock.locked():
            self._open_at[ticket.bucket] = time.monotonic() + self.window
            lock.release()


class RedisIdentifyQueue:
    """Buckets as Redis keys shared by every pod; without Redis, only this process is limited."""

    def __init__(self, link: RedisLink, window: float = 5.0, prefix: str = "identify") -> None:
        self.link = link
        self.window = window
        self.prefix = prefix
        self.local = LocalIdentifyQueue(window)

    async def acquire(self, shard_id: int, max_concurrency: int) -> Ticket:
        """Wait until this pod may identify `shard_id` (polls with jittered backoff)."""
        bucket = shard_id % max(1, max_concurrency)
        key = f"{self.prefix}:bucket:{bucket}"
        token = f"{shard_id}:{secrets.token_hex(6)}"
        delay = 0.05
        ticket = await self.local.acquire(shard_id, max_concurrency)  # order this pod's shards
        try:
            while True:
                try:
                    if await self.link.run(
                        lambda r: r.set(key, token, nx=True, px=int(HOLD_TTL * 1000))
                    ):
                        break
                except RedisUnavailable:
                    log.warning("identify queue: redis unavailable, limiting this pod only")
                    break
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.5, 0.5)
        except BaseException:
            await self.local.release(ticket)
            raise
        ticket.token = token
        return ticket

    async def release(self, ticket: Ticket) -> None:
        """Release the bucket: it reopens `window` seconds from now, for every pod."""
        key = f"{self.prefix}:bucket:{ticket.bucket}"
        window_ms = int(self.window * 1000)
        with suppress(RedisUnavailable):  # else the hold TTL frees it
            await self.link.run(lambda r: r.eval(_RELEASE, 1, key, ticket.token, window_ms))
        await self.local.release(ticket)
