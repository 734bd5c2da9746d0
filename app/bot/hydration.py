"""Loading a shard's guilds over REST before RESUMEing a session another process started.

A RESUME in a new process replays the events the shard missed but sends no GUILD_CREATE, so the
new owner knows none of its guilds (roles, channels, its own member). Replayed prefix commands
would then see no guild ("This command only works in a server") and XP would be skipped. So the
guilds are loaded first, and the session is resumed after: Discord holds the events meanwhile
and replays them onto a full cache. Three calls per guild (HANDOVER_MODE=eager; the other modes,
app/bot/handover.py, avoid them); each guild is retried on its own, and a 429 is waited out
however often it comes, so that no guild is ever abandoned to the rate limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import discord
from discord.ext import commands

from app.bot import discord_internals as internals
from app.coord.shard_plan import shard_for_guild

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE = 200
ATTEMPTS = 4
#: The longest wait between two tries of a rate-limited call.
MAX_BACKOFF = 5.0
CONCURRENCY = 4
#: Errors worth another try: rate limits and server errors (discord.py already waits out a
#: 429 it understands, a few times), dropped connections, timeouts.
TRANSIENT: tuple[type[BaseException], ...] = (
    discord.HTTPException,
    aiohttp.ClientError,
    OSError,
    TimeoutError,
)


@dataclass(frozen=True, slots=True)
class Loaded:
    """How a shard's guilds were loaded."""

    guilds: int
    failed: int


async def _retrying(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`call()`, retried with backoff on transient errors; the last error is raised.

    A 429 that discord.py gave up on (the global limit, shared with other pods) counts as no
    attempt: it is waited out for as long as it lasts.
    """
    delay, attempt = 0.25, 1
    while True:
        try:
            return await call()
        except (discord.NotFound, discord.Forbidden):
            raise  # not transient: the guild is gone or the bot was removed
        except TRANSIENT as error:
            limited = isinstance(error, discord.HTTPException) and error.status == 429
            if attempt == ATTEMPTS and not limited:
                raise
            attempt += 0 if limited else 1
            log.debug("%s failed (%s); attempt %d of %d", what, error, attempt, ATTEMPTS)
            await asyncio.sleep(delay)  # backoff between attempts
            delay = min(delay * 2, MAX_BACKOFF)


async def fetch_guild(bot: commands.AutoShardedBot, guild_id: int) -> dict[str, Any]:
    """A guild with its channels and the bot's own member, over REST (three calls)."""
    assert bot.user is not None
    me = bot.user.id
    data: Any = await _retrying(lambda: bot.http.get_guild(guild_id), "a guild")
    data["channels"] = await _retrying(
        lambda: bot.http.get_all_guild_channels(guild_id), "a guild's channels"
    )
    data["members"] = [await _retrying(lambda: bot.http.get_member(guild_id, me), "the bot member")]
    return dict(data)


async def _shard_guild_ids(bot: commands.AutoShardedBot, shard_id: int) -> list[int]:
    """Every guild of the bot on `shard_id` (pages of GET /users/@me/guilds)."""
    count = bot.shard_count or 1
    wanted: list[int] = []
    after: int | None = None
    while True:
        page = await _retrying(
            lambda cursor=after: bot.http.get_guilds(PAGE, after=cursor),  # type: ignore[misc]  # lambda default: mypy cannot infer it
            "listing the bot's guilds",
        )
        ids = [int(g["id"]) for g in page]
        wanted += [g for g in ids if shard_for_guild(g, count) == shard_id]
        if len(page) < PAGE:
            return wanted
        after = ids[-1]


async def load_shard_guilds(bot: commands.AutoShardedBot, shard_id: int) -> Loaded:
    """Load every guild of `shard_id` not cached yet into discord.py's cache.

    Never raises for one guild: a guild that could not be loaded is counted and logged.
    """
    try:
        wanted = [g for g in await _shard_guild_ids(bot, shard_id) if bot.get_guild(g) is None]
    except TRANSIENT as error:
        log.warning("shard %d: could not list its guilds (%s); resuming without", shard_id, error)
        return Loaded(0, 0)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def load(guild_id: int) -> bool:
        async with gate:
            try:
                data = await fetch_guild(bot, guild_id)
            except TRANSIENT as error:
                log.warning("shard %d: could not load guild %d: %s", shard_id, guild_id, error)
                return False
            internals.add_guild(bot, data)
            return True

    done = await asyncio.gather(*(load(g) for g in wanted))
    return Loaded(sum(done), len(done) - sum(done))
