"""Leaderboard pages and ranks: from the cache when it is complete, else from the database.

Order everywhere: coins descending, then user id ascending (the index
members_leaderboard_idx). Members holding no coins are not ranked: pages end before them (they
sort last, so leaving them out moves nobody's rank). A cache miss is answered from the
database at once and starts one background rebuild per guild, so no member waits for a large
guild to be loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from tortoise.expressions import Q

from app.coord.leaderboard_cache import LeaderboardCache, Standing
from app.db.models import Member
from app.domain import validation
from app.domain.errors import InvalidInput, ProfileNotFound

log = logging.getLogger(__name__)

MAX_PAGE = 1_000_000
REBUILD_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a leaderboard page; `name` is the last display name recorded ("": none)."""

    rank: int
    user_id: int
    coins: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """A leaderboard page, whether another follows, and where it was read from."""

    number: int
    per_page: int
    entries: list[Entry]
    source: Literal["cache", "database"]
    has_next: bool = False


class Leaderboard:
    """Reads of the per-guild ranking through a cache that the bank writes through."""

    def __init__(self, cache: LeaderboardCache) -> None:
        self.cache = cache
        self._rebuilding: dict[int, asyncio.Task[bool]] = {}

    async def page(self, guild_id: int, number: int = 1, per_page: int = 10) -> Page:
        """Page `number` (1-based) of the guild's ranking and whether a next page has anyone.

        The page is read with one line more than it shows: one cache round trip tells both.
        """
        validation.snowflake(guild_id, "guild")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PAGE:
            raise InvalidInput(f"The page must be a whole number from 1 to {MAX_PAGE:,}.")
        if not 1 <= per_page <= 25:
            raise InvalidInput("A page holds 1 to 25 entries.")
        offset = (number - 1) * per_page
        rows: Sequence[tuple[int, int, str]] | None
        rows = await self.cache.page(guild_id, offset, per_page + 1)
        source: Literal["cache", "database"] = "cache"
        if rows is None:
            self.refresh_soon(guild_id)
            source = "database"
            rows = await (
                Member.filter(guild_id=guild_id)
                .order_by("-coins", "user_id")
                .offset(offset)
                .limit(per_page + 1)
                .values_list("user_id", "coins", "display_name")
            )
        ranked = [Entry(offset + i + 1, u, c, name) for i, (u, c, name) in enumerate(rows) if c > 0]
        has_next = len(ranked) > per_page and number < MAX_PAGE
        return Page(number, per_page, ranked[:per_page], source, has_next)

    async def rank(self, guild_id: int, user_id: int) -> int:
        """The member's 1-based rank in the guild; ProfileNotFound if never seen.

        A member with no coins gets the rank after everyone who holds some; callers showing it
        say "not ranked" instead (pages leave such members out).
        """
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        cached = await self.cache.rank(guild_id, user_id)
        if cached is not None:
            return cached
        self.refresh_soon(guild_id)
        member = await Member.get_or_none(guild_id=guild_id, user_id=user_id)
        if member is None:
            raise ProfileNotFound("That member has no profile here yet.")
        ahead = await Member.filter(
            Q(coins__gt=member.coins) | Q(coins=member.coins, user_id__lt=user_id),
            guild_id=guild_id,
        ).count()
        return ahead + 1

    async def close(self) -> None:
        """Stop the background rebuilds still running (none may write after its owner closed)."""
        tasks = list(self._rebuilding.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._rebuilding.clear()

    def refresh_soon(self, guild_id: int) -> asyncio.Task[bool]:
        """Start (or join) the background rebuild of a guild's cache."""
        task = self._rebuilding.get(guild_id)
        if task is None or task.done():
            task = asyncio.create_task(self._rebuild(guild_id))
            self._rebuilding[guild_id] = task
        return task

    async def _rebuild(self, guild_id: int) -> bool:
        try:
            return await self.cache.rebuild(guild_id, snapshot(guild_id))
        except Exception:
            log.exception("leaderboard rebuild failed for guild %s", guild_id)
            return False
        finally:
            self._rebuilding.pop(guild_id, None)


async def snapshot(guild_id: int, chunk: int = REBUILD_CHUNK) -> AsyncIterator[list[Standing]]:
    """Every account of a guild with its version and name, in chunks by primary key."""
    last = 0
    while True:
        rows = await (
            Member.filter(guild_id=guild_id, id__gt=last)
            .order_by("id")
            .limit(chunk)
            .values_list("id", "user_id", "coins", "version", "display_name")
        )
        if not rows:
            return
        yield [Standing(u, c, v, name) for _, u, c, v, name in rows]
        last = rows[-1][0]
