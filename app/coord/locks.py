"""Per-account locks taken before a transfer, in Redis across processes or in-process.

They only keep contention out of the database: correctness never depends on them. A lock that
cannot be had within the bounded wait, or a Redis that is away, lets the caller go on unlocked,
and PostgreSQL's row locks still serialise the transfer.

In Redis an account's lock admits `ADMITTED` (2) holds at once: one transfer running in
PostgreSQL and one queued on its row lock there. A transfer is one statement, so PostgreSQL
hands the row to the queued one inside the server the moment the first commits; a strict
mutex would put a release, a wake-up and an acquire (three client steps) between every two
transfers of a hot account instead. Every further waiter waits in Redis and holds no database
connection. The lock is `holds:{guild}:user`, a sorted set of the holds' tokens scored by when
each expires (hash-tagged by guild, as the leaderboard's keys are, so that one script and one
pipeline reach them all in a Cluster). Every lock of a hold is taken by one script, all or
none; a waiter blocks on the full lock's wake list (`holds:{guild}:user:wake`, BLPOP) that each
release pushes to, in slices no longer than the earliest hold's remaining life (an expired hold
pushes nothing). The release and the leaderboard's write-through of the balances the hold
changed go in one pipelined call. Every round trip, the wait included, is on the link's direct
connections.

In-process (`LocalLocks`, the embedded SQLite mode) a lock is a plain mutex: SQLite runs one
write at a time anyway, so a second admitted transfer would only wait there.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Protocol

from app.coord.leaderboard_cache import LocalLeaderboard, RedisLeaderboard, Standing
from app.coord.redis_link import RedisLink, RedisUnavailable

#: Called with the length of each lock wait, in seconds.
WaitObserver = Callable[[float], None]
#: The longest single BLPOP: below the Redis link's round-trip timeout.
WAKE_SLICE_S = 0.5
#: Holds an account's Redis lock admits at once: one running, one queued in PostgreSQL.
ADMITTED = 2

# KEYS: the locks. ARGV: token, ttl ms, holds admitted. A full lock drops its expired holds
# first. {0, 0} when the hold was added to every lock, else {i, ms until KEYS[i]'s first hold
# expires}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local admitted = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  if redis.call('ZCARD', key) >= admitted then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= admitted then
      local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      return {i, tonumber(first[2]) - now}
    end
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ARGV[2], ARGV[1])
  redis.call('PEXPIRE', key, ARGV[2])
end
return {0, 0}
"""

# KEYS: n locks, then their n wake lists. ARGV: token, ttl ms. Each lock that still held the
# token wakes one waiter.
_RELEASE = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('ZREM', KEYS[i], ARGV[1]) == 1 then
    redis.call('DEL', KEYS[n + i])
    redis.call('RPUSH', KEYS[n + i], 1)
    redis.call('PEXPIRE', KEYS[n + i], ARGV[2])
  end
end
return 1
"""


@dataclass
class Hold:
    """The locks of one transfer: whether all were had, and the balances to write through.

    True when every lock was acquired. The standings put here are written to the leaderboard
    cache when the locks are released.
    """

    guild_id: int
    acquired: bool
    standings: list[Standing] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether every lock was acquired."""
        return self.acquired


class AccountLocks(Protocol):
    """Hold a set of account locks; yields True when all were acquired."""

    def hold(self, guild_id: int, user_ids: Iterable[int]) -> AbstractAsyncContextManager[Hold]:
        """`async with locks.hold(guild, users) as hold:` holds the accounts it got in time."""
        ...


class LocalLocks:
    """asyncio locks per key, for a single process (the embedded default)."""

    def __init__(
        self,
        leaderboard: LocalLeaderboard,
        wait_ms: int = 2_000,
        on_wait: WaitObserver | None = None,
    ) -> None:
        self.leaderboard = leaderboard
        self.wait = wait_ms / 1000
        #: Called with each wait's length in seconds (the bot feeds a histogram with it).
        self.on_wait = on_wait
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self._users: dict[tuple[int, int], int] = {}

    @asynccontextmanager
    async def hold(self, guild_id: int, user_ids: Iterable[int]) -> AsyncIterator[Hold]:
        """Acquire every account in order, waiting at most the bounded time in all."""
        ordered = sorted({(guild_id, user) for user in user_ids})
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
            hold = Hold(guild_id, len(held) == len(ordered))
            yield hold
            await self.leaderboard.record(guild_id, hold.standings)
        finally:
            for lock in held:
                lock.release()
            for key in ordered:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key], self._locks[key]


class RedisLocks:
    """All of a hold's locks taken by one script with a random token; released by another.

    Each lock admits `admitted` holds at once (see the module's docstring).
    """

    def __init__(
        self,
        link: RedisLink,
        leaderboard: RedisLeaderboard,
        ttl_ms: int = 5_000,
        wait_ms: int = 2_000,
        on_wait: WaitObserver | None = None,
        admitted: int = ADMITTED,
    ) -> None:
        self.link = link
        self.leaderboard = leaderboard
        self.ttl_ms = ttl_ms
        self.admitted = admitted
        self.wait = wait_ms / 1000
        #: Called with each wait's length in seconds (the bot feeds a histogram with it).
        self.on_wait = on_wait

    @staticmethod
    def key(guild_id: int, user_id: int) -> str:
        """An account's lock; its wake list is this key + ":wake"."""
        return f"holds:{{{guild_id}}}:{user_id}"

    @asynccontextmanager
    async def hold(self, guild_id: int, user_ids: Iterable[int]) -> AsyncIterator[Hold]:
        """Acquire every account within the bounded wait; release (and write through) on exit."""
        keys = [self.key(guild_id, user) for user in sorted(set(user_ids))]
        token = secrets.token_hex(8)
        started = time.monotonic()
        acquired = False
        with suppress(RedisUnavailable):
            acquired = await self._acquire(keys, token, started + self.wait)
        if self.on_wait is not None:
            self.on_wait(time.monotonic() - started)
        hold = Hold(guild_id, acquired)
        try:
            yield hold
        finally:
            await self._release(hold, keys if acquired else [], token)

    async def _acquire(self, keys: list[str], token: str, deadline: float) -> bool:
        """Hold every key at once, waiting on a full one's wake list until `deadline`."""
        while True:
            [(full, first_expires_ms)] = await self.link.direct(
                ("EVAL", _ACQUIRE, len(keys), *keys, token, self.ttl_ms, self.admitted)
            )
            if not full:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            life = first_expires_ms / 1000 if first_expires_ms > 0 else remaining
            wait = max(0.001, min(remaining, life, WAKE_SLICE_S))
            wake = keys[int(full) - 1] + ":wake"
            await self.link.direct(("BLPOP", wake, f"{wait:.3f}"), blocking=True)

    async def _release(self, hold: Hold, keys: list[str], token: str) -> None:
        """Free the locks and write the hold's standings through, in one round trip."""
        if not keys:
            await self.leaderboard.record(hold.guild_id, hold.standings)
            return

        wakes = [key + ":wake" for key in keys]
        release = ("EVAL", _RELEASE, 2 * len(keys), *keys, *wakes, token, self.ttl_ms)
        try:  # else the TTL frees the locks
            await self.link.direct(
                *self.leaderboard.record_commands(hold.guild_id, hold.standings), release
            )
        except RedisUnavailable:
            self.leaderboard.lost(hold.guild_id, hold.standings)
