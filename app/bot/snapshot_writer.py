"""A released shard's snapshot entries, encoded while the shard still serves.

Encoding 2,500 guilds takes seconds of CPU; done after the shard is parked, those are seconds
with no session. So `prepare(shard)` encodes the shard's guilds in small batches while it still
serves, and watches the events that change what a guild's entry holds (the guild, its roles and
channels, its member count, the bot's own member): a guild changed after it was encoded is
marked dirty. After the park no event arrives, and `finish(shard)` encodes again only the dirty
guilds and those that came meanwhile, and leaves out those that went. A channel's
last_message_id may be older than the park: nothing the bot does reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from app.bot import discord_internals as internals
from app.bot.guild_payload import guild_payload
from app.coord.shard_plan import shard_for_guild
from app.coord.snapshots import pack_guild

if TYPE_CHECKING:
    from app.bot.client import GuildBot

#: Gateway events that change a guild's entry, and where their guild id is.
CHANGES = {
    "GUILD_CREATE": "id",
    "GUILD_UPDATE": "id",
    "GUILD_ROLE_CREATE": "guild_id",
    "GUILD_ROLE_UPDATE": "guild_id",
    "GUILD_ROLE_DELETE": "guild_id",
    "CHANNEL_CREATE": "guild_id",
    "CHANNEL_UPDATE": "guild_id",
    "CHANNEL_DELETE": "guild_id",
    "GUILD_MEMBER_ADD": "guild_id",
    "GUILD_MEMBER_REMOVE": "guild_id",
    "GUILD_MEMBER_UPDATE": "guild_id",
}
#: Guilds encoded between two turns of the event loop.
BATCH = 50


@dataclass
class _Draft:
    """A shard's entries encoded so far, and the guilds changed since their entry was."""

    entries: dict[int, bytes] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)


class SnapshotWriter:
    """Encodes the guilds of shards about to be released."""

    def __init__(self, bot: GuildBot) -> None:
        self.bot = bot
        self._drafts: dict[int, _Draft] = {}
        self._installed = False

    async def prepare(self, shard_id: int) -> int:
        """Encode the shard's guilds while it serves; how many. `finish` redoes the changed."""
        if not self._installed:
            internals.wrap_parsers(self.bot, CHANGES, self._watching)
            self._installed = True
        draft = self._drafts[shard_id] = _Draft()
        for done, guild in enumerate(self._held(shard_id), 1):
            draft.entries[guild.id] = pack_guild(guild_payload(guild))
            draft.dirty.discard(guild.id)
            await breathe(done)
        return len(draft.entries)

    async def finish(self, shard_id: int) -> dict[int, bytes]:
        """Once the shard is parked: its guilds' entries, encoding only what `prepare` lacks."""
        draft = self._drafts.pop(shard_id, None) or _Draft()
        entries: dict[int, bytes] = {}
        encoded = 0
        for guild in self._held(shard_id):
            entry = draft.entries.get(guild.id)
            if entry is None or guild.id in draft.dirty:
                entry = pack_guild(guild_payload(guild))
                encoded += 1
                await breathe(encoded)
            entries[guild.id] = entry
        return entries

    def forget(self, shard_id: int) -> None:
        """Drop what `prepare` encoded for a shard that is not released after all."""
        self._drafts.pop(shard_id, None)

    def _held(self, shard_id: int) -> list[discord.Guild]:
        # A guild not loaded yet (no member of the bot's own) is left out: the next owner
        # loads it on its first event, like any guild the snapshot lacks.
        return [
            g
            for g in self.bot.guilds
            if g.shard_id == shard_id and g.me is not None and not g.unavailable
        ]

    def _watching(self, event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        key = CHANGES[event]

        def handle(data: Any) -> None:
            if self._drafts and isinstance(data, dict) and data.get(key) is not None:
                guild_id = int(data[key])
                draft = self._drafts.get(shard_for_guild(guild_id, self.bot.shard_count or 1))
                if draft is not None:
                    draft.dirty.add(guild_id)
            parse(data)

        return handle


async def breathe(done: int) -> None:
    """Let the event loop run (heartbeats, lease renewals, commands) every BATCH guilds."""
    if done % BATCH == 0:
        await asyncio.sleep(0)
