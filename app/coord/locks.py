"""Per-account locks taken before a transfer, in Redis across processes or in-process.

They only keep contention out of the database: correctness never depends on them. A lock that
cannot be had within the bounded wait, or a Redis that is away, lets the caller go on unlocked,
and PostgreSQL's row locks still serialise the transfer.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Protocol

from app.coord.redis_link import RedisLink, RedisUnavailable

#: Called with the length of each lock wait, in seconds.
WaitObserver = Callable[[float], None]

_RELEASE = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


class AccountLocks(Protocol):
    """Hold a set of account locks; yields True when all were acquired."""

    def hold(self, keys: Iterable[str]) -> AbstractAsyncContextManager[bool]:
        """`async with locks.hold(keys) as all_held:` holds the keys it could get in time."""
        ...


class LocalLocks:
    """asyncio locks per key, for a single process (the embedded default)."""

    def __init__(self, wait_ms: int = 2_000, on_wait: WaitObserver | None = None) -> None:
        self.wait = wait_ms / 1000
        #: Called with each wait's length in seconds (the bot feeds a histogram with it).
        self.on_wait = on_wait
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[bool]:
        """Acquire every key in sorted order, waiting at most the bounded time in all."""
        ordered = sorted(set(keys))
        for key in ordered:
            self._users[key] = self._users.get(key, 0) + 1
            self._locks.setdefault(key, asyncio.Lock())
        held: list[asyncio.Lock] = []
        started = time.monotonic()
        deadline = started + self.wait
        try:
            for key in ordered:
                lock = self._locks[key]
                try:
                    await asyncio.wait_for(lock.acquire(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    break
                held.append(lock)
            if self.on_wait is not None:
                self.on_wait(time.monotonic() - started)
            yield len(held) == len(ordered)
        finally:
            for lock in held:
                lock.release()
            for key in ordered:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key], self._locks[key]


class RedisLocks:
    """SET NX PX locks with a random token, acquired in sorted order, released by a script."""

    def __init__(
        self,
        link: RedisLink,
        ttl_ms: int = 5_000,
        wait_ms: int = 2_000,
        on_wait: WaitObserver | None = None,
    ) -> None:
        self.link = link
        self.ttl_ms = ttl_ms
        self.wait = wait_ms / 1000
        #: Called with each wait's length in seconds (the bot feeds a histogram with it).
        self.on_wait = on_wait

    @asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[bool]:
        """Acquire every key in sorted order within the bounded wait; release on exit."""
        ordered = [f"lock:{key}" for key in sorted(set(keys))]
        token = secrets.token_hex(8)
        started = time.monotonic()
        acquired: list[str] = []
        with suppress(RedisUnavailable):
            acquired = await self._acquire(ordered, token, started + self.wait)
        if self.on_wait is not None:
            self.on_wait(time.monotonic() - started)
        try:
            yield len(acquired) == len(ordered)
        finally:
            if acquired:
                with suppress(RedisUnavailable):  # else the TTL frees them
                    await self.link.run(lambda r: r.eval(_RELEASE, len(acquired), *acquired, token))

    async def _acquire(self, keys: list[str], token: str, deadline: float) -> list[str]:
        acquired: list[str] = []
        for key in keys:
            if not await self._take(key, token, deadline):
                break
            acquired.append(key)
        return acquired

    async def _take(self, key: str, token: str, deadline: float) -> bool:
        """SET `key` NX, retrying until `deadline`; False when it stayed taken."""
        delay = 0.002
        while True:
            if await self.link.run(lambda r: r.set(key, token, nx=True, px=self.ttl_ms)):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Polling with jittered backoff: a waiter, not a synchronisation point.
            await asyncio.sleep(min(remaining, delay * (0.5 + random.random())))
            delay = min(delay * 2, 0.05)
