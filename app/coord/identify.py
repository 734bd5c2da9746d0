"""The identify queue: one IDENTIFY per 5 s per bucket, across every process of the bot.

Discord allows one IDENTIFY per 5 s per bucket (shard_id % max_concurrency) across every process
of the bot, and invalidates sessions (op 9) beyond that.

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

    async def acquire(self, shard_id: int, max_concurrency: int) -> Ticket:
        """Wait until `shard_id` may identify: its bucket is free and its window has passed."""
        ...

    async def release(self, ticket: Ticket) -> None:
        """Free the bucket; it reopens `window` seconds from now."""
        ...


class LocalIdentifyQueue:
    """The same rule inside one process (the embedded default).

    Waits are bounded like the Redis queue's: a holder that neither reached READY nor released
    its bucket within `hold_ttl` (its connection hung, its failure was never handled) loses it,
    so one stuck shard can never keep the others of its bucket waiting for ever.
    """

    def __init__(self, window: float = 5.0, hold_ttl: float = HOLD_TTL) -> None:
        self.window = window
        self.hold_ttl = hold_ttl
        self._locks: dict[int, asyncio.Lock] = {}
        self._open_at: dict[int, float] = {}
        self._holders: dict[int, Ticket] = {}
        self._expiry: dict[int, asyncio.TimerHandle] = {}

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
        ticket = Ticket(shard_id, bucket, "")
        self._holders[bucket] = ticket
        loop = asyncio.get_running_loop()
        self._expiry[bucket] = loop.call_later(self.hold_ttl, self._expire, ticket)
        return ticket

    def _expire(self, ticket: Ticket) -> None:
        if self._holders.get(ticket.bucket) is ticket:
            log.warning(
                "shard %d held identify bucket %d for %.0f s without READY: freeing it",
                ticket.shard_id,
                ticket.bucket,
                self.hold_ttl,
            )
            self._free(ticket)

    def _free(self, ticket: Ticket) -> None:
        """Free the bucket if `ticket` still holds it; it reopens `window` seconds from now."""
        if self._holders.get(ticket.bucket) is not ticket:
            return  # released before, or expired and taken by another shard since
        del self._holders[ticket.bucket]
        self._expiry.pop(ticket.bucket).cancel()
        self._open_at[ticket.bucket] = time.monotonic() + self.window
        self._locks[ticket.bucket].release()

    async def release(self, ticket: Ticket) -> None:
        """Free the bucket (once: a ticket released or expired before frees nothing)."""
        self._free(ticket)


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
