"""The few places where we reach into discord.py's shard machinery, kept in one module.

AutoShardedBot has no public way to launch a shard by RESUMEing a session another process
started, nor to close a shard without invalidating its session (Shard.close sends close code
1000, which ends the session for good). These helpers do both with discord.py 2.7's internals;
tests/bot/test_sharding.py checks the attributes they rely on, so an upgrade that moves them
fails loudly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.shard import Shard

# Closing with a code other than 1000/1001 keeps the session resumable, as Discord documents.
RESUMABLE_CLOSE = 4000
CONNECT_TIMEOUT = 60.0


def shards_of(bot: commands.AutoShardedBot) -> dict[int, Shard]:
    """The bot's live Shard objects by id."""
    return bot._AutoShardedClient__shards  # type: ignore[attr-defined]


def session_of(shard: Shard) -> tuple[str | None, int | None, str | None]:
    """(session id, last sequence, resume URL) of a shard's current connection."""
    ws = shard.ws  # ws.gateway is READY's resume_gateway_url once the shard is connected
    return ws.session_id, ws.sequence, str(ws.gateway) if ws.gateway else None


async def resume_shard(
    bot: commands.AutoShardedBot,
    shard_id: int,
    session_id: str,
    sequence: int,
    resume_url: str,
    *,
    initial: bool = False,
) -> None:
    """Launch `shard_id` by RESUMEing a saved session, in place of AutoShardedBot.launch_shard.

    If Discord refuses the resume it answers INVALID_SESSION and discord.py re-identifies
    (through before_identify_hook, so through the identify queue).
    """
    ws = await asyncio.wait_for(
        DiscordWebSocket.from_client(
            bot,
            initial=initial,
            gateway=yarl.URL(resume_url),
            shard_id=shard_id,
            session=session_id,
            sequence=sequence,
            resume=True,
        ),
        timeout=CONNECT_TIMEOUT,
    )
    queue_put: Any = bot._AutoShardedClient__queue.put_nowait  # type: ignore[attr-defined]
    shard = Shard(ws, bot, queue_put)
    shards_of(bot)[shard_id] = shard
    shard.launch()


async def park_shard(shard: Shard) -> None:
    """Stop a shard but leave its session resumable for the next owner."""
    shard._cancel_task()
    await shard.ws.close(code=RESUMABLE_CLOSE)


async def hydrate_guilds(bot: commands.AutoShardedBot, shard_id: int, concurrency: int = 4) -> int:
    """Load a resumed shard's guilds into discord.py's cache over REST; returns how many.

    A RESUME in a new process replays missed events but sends no GUILD_CREATE, so the new owner
    knows none of the shard's guilds (their roles and channels, its own member). Costs three
    REST calls per guild; until a guild is loaded its commands see a partial guild.
    """
    state: Any = bot._connection
    wanted: list[int] = []
    after = 0
    while True:
        page = await bot.http.get_guilds(200, after=after or None)
        if not page:
            break
        ids = [int(g["id"]) for g in page]
        wanted += [g for g in ids if (g >> 22) % (bot.shard_count or 1) == shard_id]
        after = ids[-1]
        if len(page) < 200:
            break
    gate = asyncio.Semaphore(concurrency)

    async def load(guild_id: int) -> None:
        async with gate:
            data: Any = await bot.http.get_guild(guild_id)
            data["channels"] = await bot.http.get_all_guild_channels(guild_id)
            data["members"] = [await bot.http.get_member(guild_id, bot.user.id)]  # type: ignore[union-attr]
            state._add_guild_from_data(data)

    await asyncio.gather(*(load(g) for g in wanted if bot.get_guild(g) is None))
    return len(wanted)


def mark_ready(bot: commands.AutoShardedBot) -> None:
    """Set the client ready when its shards came up by RESUME (discord.py waits for READY)."""
    if not bot.is_ready():
        bot._ready.set()  # type: ignore[attr-defined]
        bot.dispatch("ready")


def forget_guilds(bot: commands.AutoShardedBot, shard_id: int) -> None:
    """Drop a released shard's guilds from the cache: another process serves them now."""
    state: Any = bot._connection
    for guild in [g for g in bot.guilds if g.shard_id == shard_id]:
        state._remove_guild(guild)
