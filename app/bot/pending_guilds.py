"""A taken-over shard's guilds, rebuilt from its snapshot when first needed.

Rebuilding 2,500 guilds takes seconds of CPU; done before RESUME, those are seconds with no
session. So the new owner RESUMEs as soon as it holds the snapshot's entries, and rebuilds a
guild when discord.py first looks it up (every event and `bot.get_guild` do,
`discord_internals.on_guild_miss`), and the others in the background, a few between two turns
of the event loop. A guild some event brought into the cache meanwhile (GUILD_CREATE) is not
rebuilt: the fresh state wins. Until the background fill ends, `bot.guilds` lists only the
guilds rebuilt so far.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from typing import TYPE_CHECKING

from app.bot import discord_internals as internals
from app.coord.shard_plan import shard_for_guild
from app.coord.snapshots import unpack_guild
from app.ops import metrics

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: Guilds rebuilt in the background between two turns of the event loop.
FILL_BATCH = 10


class PendingGuilds:
    """Snapshot entries of guilds not rebuilt yet, and the tasks rebuilding them."""

    def __init__(self, bot: GuildBot) -> None:
        self.bot = bot
        self._entries: dict[int, bytes] = {}
        self._fills: dict[int, asyncio.Task[None]] = {}
        self._installed = False

    def adopt(self, shard_id: int, entries: dict[int, bytes]) -> None:
        """Rebuild these guilds of `shard_id` on first lookup, and all of them soon."""
        if not self._installed:
            internals.on_guild_miss(self.bot, self._build)
            self._installed = True
        self._entries.update(entries)
        self._fills[shard_id] = asyncio.create_task(
            self._fill(shard_id, list(entries)), name=f"rebuild-guilds-{shard_id}"
        )

    def of_shard(self, shard_id: int) -> dict[int, bytes]:
        """The entries of `shard_id`'s guilds not rebuilt yet."""
        count = self.bot.shard_count or 1
        return {g: e for g, e in self._entries.items() if shard_for_guild(g, count) == shard_id}

    async def take(self, shard_id: int) -> dict[int, bytes]:
        """The shard was parked: stop rebuilding its guilds; the entries not rebuilt yet."""
        fill = self._fills.pop(shard_id, None)
        if fill is not None:
            fill.cancel()
            await asyncio.gather(fill, return_exceptions=True)
        entries = self.of_shard(shard_id)
        for guild_id in entries:
            del self._entries[guild_id]
        return entries

    def _build(self, guild_id: int) -> None:
        entry = self._entries.pop(guild_id, None)
        if entry is None:
            return
        try:
            internals.add_guild(self.bot, unpack_guild(entry))
        except (ValueError, KeyError, TypeError, zlib.error) as error:  # loaded over REST instead
            log.warning("guild %d: unreadable snapshot entry (%s)", guild_id, error)
        else:
            metrics.HANDOVER_GUILDS.labels("snapshot").inc()

    async def _fill(self, shard_id: int, guild_ids: list[int]) -> None:
        started = time.perf_counter()
        for done, guild_id in enumerate(guild_ids, 1):
            self.bot.get_guild(guild_id)  # rebuilt unless already cached
            self._entries.pop(guild_id, None)
            if done % FILL_BATCH == 0:
                await asyncio.sleep(0)
        self._fills.pop(shard_id, None)
        log.info(
            "shard %d: %d guild(s) rebuilt from the snapshot in %.2f s",
            shard_id,
            len(guild_ids),
            time.perf_counter() - started,
        )
