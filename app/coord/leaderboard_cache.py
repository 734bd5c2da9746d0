"""The per-guild leaderboard cache: a Redis sorted set, or an in-process one.

Order is coins descending, then user id ascending, the same as the database index
(guild_id, coins DESC, user_id). In Redis the score is -coins and members are user ids padded
to 20 digits, so ZRANGE's ascending score-then-lexicographic order is exactly that order.

Every entry carries the account's version (incremented with each coin movement in the same
transaction), and a write only lands when its version is newer: write-throughs that arrive out
of order, or during a rebuild, can never put an older balance over a newer one.

The members' last recorded display names are kept beside the scores (written by each rebuild
and when a profile sees a new name), so that a page names the members who left without asking
the database. A name is cosmetic and not versioned: the last write wins.
"""

from __future__ import annotations

import bisect
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from app.coord.redis_direct import Command
from app.coord.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Standing:
    """One account's position data: who, how many coins, its version (and its last name)."""

    user_id: int
    coins: int
    version: int
    #: The last display name recorded; None leaves the cached name as it is.
    name: str | None = None


class Ranked(NamedTuple):
    """One line of a cached page: who, how many coins, the last recorded name ("": none)."""

    user_id: int
    coins: int
    name: str


class LeaderboardCache(Protocol):
    """What the domain needs from a leaderboard cache. None means: ask the database."""

    async def record(self, guild_id: int, standings: Sequence[Standing]) -> None:
        """Apply balances newer than the cached ones."""
        ...

    async def page(self, guild_id: int, offset: int, limit: int) -> list[Ranked] | None:
        """`limit` lines from `offset`, richest first."""
        ...

    async def rank(self, guild_id: int, user_id: int) -> int | None:
        """The member's 1-based rank."""
        ...

    async def rebuild(self, guild_id: int, rows: AsyncIterator[list[Standing]]) -> bool:
        """Load the guild from a database snapshot; False when it could not."""
        ...

    async def name(self, guild_id: int, user_id: int, name: str) -> None:
        """Record a member's new display name."""
        ...


class LocalLeaderboard:
    """A sorted list per guild, for the embedded single-process default."""

    def __init__(self) -> None:
        self._order: dict[int, list[tuple[int, int]]] = {}
        self._known: dict[int, dict[int, Standing]] = {}
        self._names: dict[int, dict[int, str]] = {}
        self._complete: set[int] = set()

    async def record(self, guild_id: int, standings: Sequence[Standing]) -> None:
        """Apply newer balances."""
        order = self._order.setdefault(guild_id, [])
        known = self._known.setdefault(guild_id, {})
        for new in standings:
            old = known.get(new.user_id)
            if old is not None and old.version >= new.version:
                continue
            if old is not None:
                del order[bisect.bisect_left(order, (-old.coins, old.user_id))]
            bisect.insort(order, (-new.coins, new.user_id))
            known[new.user_id] = new

    async def page(self, guild_id: int, offset: int, limit: int) -> list[Ranked] | None:
        """`limit` lines from `offset`, or None before the first rebuild."""
        if guild_id not in self._complete:
            return None
        names = self._names.get(guild_id, {})
        rows = self._order[guild_id][offset : offset + limit]
        return [Ranked(user_id, -score, names.get(user_id, "")) for score, user_id in rows]

    async def rank(self, guild_id: int, user_id: int) -> int | None:
        """1-based rank, or None when unknown."""
        if guild_id not in self._complete:
            return None
        standing = self._known[guild_id].get(user_id)
        if standing is None:
            return None
        return bisect.bisect_left(self._order[guild_id], (-standing.coins, user_id)) + 1

    async def rebuild(self, guild_id: int, rows: AsyncIterator[list[Standing]]) -> bool:
        """Load every account from the database snapshot."""
        async for chunk in rows:
            await self.record(guild_id, chunk)
            for s in chunk:
                if s.name is not None:
                    await self.name(guild_id, s.user_id, s.name)
        self._order.setdefault(guild_id, [])
        self._known.setdefault(guild_id, {})
        self._complete.add(guild_id)
        return True

    async def name(self, guild_id: int, user_id: int, name: str) -> None:
        """Record a member's new display name."""
        self._names.setdefault(guild_id, {})[user_id] = name


_RECORD = """
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  if (not cur) or tonumber(ARGV[i + 2]) > tonumber(cur) then
    redis.call('ZADD', KEYS[1], -tonumber(ARGV[i + 1]), ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
return 1
"""

# KEYS: zset, complete marker, names. {ids and scores, names} or false when incomplete.
_PAGE = """
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local z = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
if #z == 0 then return {z, {}} end
local ids = {}
for i = 1, #z, 2 do ids[#ids + 1] = z[i] end
return {z, redis.call('HMGET', KEYS[3], unpack(ids))}
"""

_RANK = """
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local r = redis.call('ZRANK', KEYS[1], ARGV[1])
if not r then return -1 end
return r
"""

# KEYS: live zset, live versions, tmp zset, tmp versions, complete marker. ARGV: ttl seconds.
# Entries written to the live keys while the snapshot was read win when their version is newer.
_FINISH = """
local live = redis.call('HGETALL', KEYS[2])
for i = 1, #live, 2 do
  local tv = redis.call('HGET', KEYS[4], live[i])
  if (not tv) or tonumber(live[i + 1]) > tonumber(tv) then
    redis.call('ZADD', KEYS[3], redis.call('ZSCORE', KEYS[1], live[i]), live[i])
    redis.call('HSET', KEYS[4], live[i], live[i + 1])
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[1])
  redis.call('RENAME', KEYS[4], KEYS[2])
else
  redis.call('DEL', KEYS[1], KEYS[2])
end
redis.call('SET', KEYS[5], '1', 'EX', ARGV[1])
return 1
"""


def _member(user_id: int) -> str:
    return f"{user_id:020d}"


class RedisLeaderboard:
    """Sorted sets in Redis shared by every process; keys hash-tagged by guild for Cluster.

    A guild is served from the cache only while its `complete` marker exists. The marker
    expires after `ttl` seconds, which bounds staleness after a write-through was lost; a
    process that failed a write also drops the markers of those guilds once Redis is back.
    """

    def __init__(self, link: RedisLink, ttl: int = 3_600) -> None:
        self.link = link
        self.ttl = ttl
        self._dirty: set[int] = set()
        link.on_recover(self._forget_dirty)

    @staticmethod
    def keys(guild_id: int) -> tuple[str, str, str]:
        """(sorted set, versions hash, complete marker) of a guild."""
        tag = f"lb:{{{guild_id}}}"
        return f"{tag}:z", f"{tag}:v", f"{tag}:ok"

    @staticmethod
    def names_key(guild_id: int) -> str:
        """The hash of the guild's last recorded display names, by padded user id."""
        return f"lb:{{{guild_id}}}:n"

    async def _forget_dirty(self) -> None:
        """Drop the markers of guilds written while Redis was away (kept until that worked)."""
        dirty = set(self._dirty)
        if dirty:
            await self.link.client.delete(*(self.keys(g)[2] for g in dirty))
            self._dirty -= dirty
            log.info(
                "dropped the leaderboard cache of %d guild(s) written while redis was away",
                len(dirty),
            )

    async def record(self, guild_id: int, standings: Sequence[Standing]) -> None:
        """Write through new balances; on failure remember the guild as dirty."""
        if not standings:
            return
        try:
            await self.link.direct(*self.record_commands(guild_id, standings))
        except RedisUnavailable:
            self.lost(guild_id, standings)

    def record_commands(self, guild_id: int, standings: Sequence[Standing]) -> list[Command]:
        """The write-through of `standings` as commands to send (none when there are none)."""
        if not standings:
            return []
        zset, versions, _ = self.keys(guild_id)
        args: list[str | int] = []
        for s in standings:
            args += [_member(s.user_id), s.coins, s.version]
        return [("EVAL", _RECORD, 2, zset, versions, *args)]

    def lost(self, guild_id: int, standings: Sequence[Standing]) -> None:
        """A write-through failed: the guild's cache is dropped once Redis is back."""
        if standings:
            self._dirty.add(guild_id)

    async def page(self, guild_id: int, offset: int, limit: int) -> list[Ranked] | None:
        """`limit` lines from `offset` with their names, or None when missing or Redis is away."""
        zset, _, marker = self.keys(guild_id)
        names_key = self.names_key(guild_id)
        try:
            [raw] = await self.link.direct(
                ("EVAL", _PAGE, 3, zset, marker, names_key, offset, offset + limit - 1)
            )
        except RedisUnavailable:
            return None
        if raw is None:
            return None
        scores, names = raw
        return [
            Ranked(int(scores[2 * i]), -int(float(scores[2 * i + 1])), (name or b"").decode())
            for i, name in enumerate(names)
        ]

    async def rank(self, guild_id: int, user_id: int) -> int | None:
        """1-based rank, or None when missing, unknown or Redis is away."""
        zset, _, marker = self.keys(guild_id)
        try:
            [raw] = await self.link.direct(("EVAL", _RANK, 2, zset, marker, _member(user_id)))
        except RedisUnavailable:
            return None
        if raw is None or int(raw) < 0:
            return None
        return int(raw) + 1

    async def rebuild(self, guild_id: int, rows: AsyncIterator[list[Standing]]) -> bool:
        """Build a temporary key from the database snapshot, merge newer live writes, RENAME.

        Only one process rebuilds a guild at a time; the others keep reading the database.
        Returns False when the rebuild did not happen.
        """
        zset, versions, marker = self.keys(guild_id)
        tag = f"lb:{{{guild_id}}}"
        token = secrets.token_hex(6)
        tmp_z, tmp_v, building = f"{tag}:tmp:{token}:z", f"{tag}:tmp:{token}:v", f"{tag}:building"
        try:
            if not await self.link.run(lambda r: r.set(building, token, nx=True, ex=120)):
                return False
            async for chunk in rows:
                await self._load_chunk(guild_id, (tmp_z, tmp_v), chunk)
            await self.link.run(
                lambda r: r.eval(_FINISH, 5, zset, versions, tmp_z, tmp_v, marker, self.ttl)
            )
            await self.link.run(lambda r: r.delete(building))
            return True
        except RedisUnavailable:
            return False

    async def _load_chunk(self, guild_id: int, tmp: tuple[str, str], chunk: list[Standing]) -> None:
        if not chunk:
            return
        tmp_z, tmp_v = tmp
        names: dict[FieldT, EncodableT] = {
            _member(s.user_id): s.name for s in chunk if s.name is not None
        }

        async def load(r: Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.zadd(tmp_z, {_member(s.user_id): -s.coins for s in chunk})
            pipe.hset(tmp_v, mapping={_member(s.user_id): s.version for s in chunk})
            if names:
                pipe.hset(self.names_key(guild_id), mapping=names)
            pipe.expire(tmp_z, 300)
            pipe.expire(tmp_v, 300)
            return await pipe.execute()

        await self.link.run(load)

    async def name(self, guild_id: int, user_id: int, name: str) -> None:
        """Record a member's new display name (while Redis is away, the next rebuild does)."""
        with suppress(RedisUnavailable):
            await self.link.run(lambda r: r.hset(self.names_key(guild_id), _member(user_id), name))
