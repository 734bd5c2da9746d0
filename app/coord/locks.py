"""Per-account locks taken before a transfer, in Redis across processes or in-process.

They only keep contention out of the database: correctness never depends on them. A lock that
cannot be had within the bounded wait, or a Redis that is away, lets the caller go on unlocked,
and PostgreSQL's row locks still serialise the transfer.

In Redis an account's lock is `lock:{guild}:user` (hash-tagged by guild, as the leaderboard's
keys are, so that one script and one pipeline reach them all in a Cluster). Every lock of a
hold is taken by one script, all or none; a waiter blocks on the held lock's wake list
(`lock:{guild}:user:wake`, BLPOP) that the release pushes to, in slices no longer than the
lock's remaining life (an expired lock pushes nothing). The release and the leaderboard's
write-through of the balances the hold changed go in one pipelined call.
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
#: The longest single BLPOP: below the Redis link's socket timeout.
WAKE_SLICE_S = 0.5

# KEYS: the locks. ARGV: token, ttl ms. {0, 0} when all were set, else {i, PTTL of KEYS[i]}.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return {i, redis.call('PTTL', key)} end
end
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
return {0, 0}
"""

# KEYS: n locks, then their n wake lists. ARGV: token, ttl ms.
_RELEASE = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i], KEYS[n + i])
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
    """All of a hold's locks taken by one script with a random token; released by another."""

    def __init__(
        self,
        link: RedisLink,
        leaderboard: RedisLeaderboard,
        ttl_ms: int = 5_000,
        wait_ms: int = 2_000,
        on_wait: WaitObserver | None = None,
    ) -> None:
        self.link = link
        self.leaderboard = leaderboard
        self.ttl_ms = ttl_ms
        self.wait = wait_ms / 1000
        #: Called with each wait's length in seconds (the bot feeds a histogram with it).
        self.on_wait = on_wait

    @staticmethod
    def key(guild_id: int, user_id: int) -> str:
        """An account's lock; its wake list is this key + ":wake"."""
        return f"lock:{{{guild_id}}}:{user_id}"

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
        """Take every key at once, waiting on a held one's wake list until `deadline`."""
        while True:
            [(held, pttl)] = await self.link.direct(
                ("EVAL", _ACQUIRE, len(keys), *keys, token, self.ttl_ms)
            )
            if not held:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            life = pttl / 1000 if pttl > 0 else remaining
            wait = max(0.001, min(remaining, life, WAKE_SLICE_S))
            wake = keys[int(held) - 1] + ":wake"
            await self._sleep_until_woken(wake, wait)

    async def _sleep_until_woken(self, wake: str, seconds: float) -> None:
        """Block on a wake list for at most `seconds` (a release pushes to it)."""
        await self.link.run(lambda r: r.blpop([wake], timeout=seconds))

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
