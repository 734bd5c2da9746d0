"""Guilds of a shard resumed without their state, loaded over REST on their first event.

HANDOVER_MODE=lazy (and the fallback of `snapshot` when no usable snapshot was left): the new
owner RESUMEs at once. The first event about a guild it does not know starts loading that guild
(three REST calls, 429s waited out); that event and every later one of the guild are held and
handled in order once the guild is cached. One load per guild at a time, however many events
arrive meanwhile; the other guilds' events are not held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord

from app.bot import discord_internals as internals
from app.bot.hydration import TRANSIENT, fetch_guild
from app.coord.shard_plan import shard_for_guild
from app.ops import metrics

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: How long a released shard's loads in flight may take before its held events are dropped.
SETTLE_WITHIN = 10.0


class LazyGuilds:
    """Holds the events of uncached guilds of some shards and loads each guild once."""

    def __init__(self, bot: GuildBot) -> None:
        self.bot = bot
        #: Shards whose guilds are loaded on demand.
        self.shards: set[int] = set()
        self._held: dict[int, list[Callable[[], None]]] = {}
        self._loads: dict[int, asyncio.Task[None]] = {}
        self._installed = False

    def adopt(self, shard_id: int) -> None:
        """Load `shard_id`'s guilds on demand from now on."""
        if not self._installed:
            internals.intercept_guild_events(self.bot, self.hold)
            self._installed = True
        self.shards.add(shard_id)

    def hold(self, guild_id: int, handle: Callable[[], None]) -> bool:
        """Keep an event of an uncached guild of a lazy shard until the guild is loaded."""
        if guild_id in self._held:
            self._held[guild_id].append(handle)
            return True
        if shard_for_guild(guild_id, self.bot.shard_count or 1) not in self.shards:
            return False
        self._held[guild_id] = [handle]
        self._loads[guild_id] = asyncio.create_task(self._load(guild_id), name=f"load-{guild_id}")
        return True

    def loading(self, shard_id: int) -> list[asyncio.Task[None]]:
        """The loads in flight of `shard_id`'s guilds."""
        count = self.bot.shard_count or 1
        return [t for g, t in self._loads.items() if shard_for_guild(g, count) == shard_id]

    async def _load(self, guild_id: int) -> None:
        try:
            internals.add_guild(self.bot, await fetch_guild(self.bot, guild_id))
        except (discord.NotFound, discord.Forbidden):
            log.info("guild %d is gone; its events are handled without it", guild_id)
        except TRANSIENT as error:
            log.warning("could not load guild %d (%s); its events go without it", guild_id, error)
        else:
            metrics.HANDOVER_GUILDS.labels("lazy").inc()
        finally:
            self._loads.pop(guild_id, None)
            for handle in self._held.pop(guild_id, []):
                try:
                    handle()
                except Exception:
                    log.exception("a held event of guild %d failed", guild_id)

    async def release(self, shard_id: int) -> None:
        """The shard was parked: let its loads finish (bounded), then stop loading its guilds.

        So no held event is lost before the shard's state is handed on.
        """
        pending = self.loading(shard_id)
        if pending:
            _, late = await asyncio.wait(pending, timeout=SETTLE_WITHIN)
            for task in late:
                task.cancel()
            if late:
                log.warning("shard %d: %d guild load(s) abandoned on release", shard_id, len(late))
        self.shards.discard(shard_id)
