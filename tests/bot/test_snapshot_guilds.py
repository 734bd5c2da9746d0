"""A moved shard's guilds: encoded while it serves, redone if changed, rebuilt when first needed.

The bot runs in-process against the sandbox (app/bot/snapshot_writer.py, app/bot/pending_guilds.py).
"""

from __future__ import annotations

import discord

from app.bot import discord_internals as internals
from app.bot.pending_guilds import PendingGuilds
from app.bot.snapshot_writer import SnapshotWriter
from app.coord.shard_plan import shard_for_guild
from app.coord.snapshots import unpack_guild
from sandbox import payloads
from tests.bot.harness import Harness
from testsupport.waiting import wait_for


def channel_names(entry: bytes) -> set[str]:
    return {c["name"] for c in unpack_guild(entry)["channels"]}


async def test_a_guild_changed_after_it_was_encoded_is_encoded_again_after_the_park(
    h: Harness,
) -> None:
    writer = SnapshotWriter(h.bot)
    shard = h.bot.get_guild(h.guild.id).shard_id
    await writer.prepare(shard)
    channel = h.driver.channel(h.guild, "quiet")
    old_name, channel.name = channel.name, "renamed-after-prepare"
    try:
        h.driver.core.emit("CHANNEL_UPDATE", payloads.channel(channel, h.driver.world), h.guild.id)
        await wait_for(lambda: h.bot.get_channel(channel.id).name == channel.name)
        entries = await writer.finish(shard)
    finally:
        channel.name = old_name
        h.driver.core.emit("CHANNEL_UPDATE", payloads.channel(channel, h.driver.world), h.guild.id)
        await wait_for(lambda: h.bot.get_channel(channel.id).name == old_name)
    assert "renamed-after-prepare" in channel_names(entries[h.guild.id])
    assert old_name not in channel_names(entries[h.guild.id])


async def test_a_pending_guild_is_rebuilt_on_first_lookup_and_answers(h: Harness) -> None:
    guild = h.bot.get_guild(h.guild.id)
    assert guild is not None
    writer = SnapshotWriter(h.bot)
    entries = await writer.finish(guild.shard_id)
    state = getattr(h.bot, "_connection")  # noqa: B009
    state._remove_guild(guild)  # as after a RESUME in a new process: not in the cache
    assert h.bot.get_guild(h.guild.id) is None
    pending = PendingGuilds(h.bot)
    pending.adopt(guild.shard_id, {h.guild.id: entries[h.guild.id]})
    rebuilt = h.bot.get_guild(h.guild.id)  # before the background fill ran: on lookup
    assert isinstance(rebuilt, discord.Guild) and rebuilt is not guild
    assert rebuilt.me is not None and {c.name for c in rebuilt.channels} == {
        c.name for c in guild.channels
    }
    reply = await h.prefix("m1", "balance")
    assert reply.content.startswith("You hold"), reply.content
    assert await pending.take(guild.shard_id) == {}  # rebuilt: nothing left to hand on
    assert internals.shards_of(h.bot)  # the shard kept serving throughout


async def test_an_unreadable_entry_leaves_its_guild_to_load_on_first_event(h: Harness) -> None:
    pending = PendingGuilds(h.bot)
    guild_id = h.guild.id + 1  # not a guild of this sandbox
    shard = shard_for_guild(guild_id, h.bot.shard_count or 1)
    pending.adopt(shard, {guild_id: b"not a guild entry"})
    assert h.bot.get_guild(guild_id) is None  # a warning, not an error inside event parsing
    assert await pending.take(shard) == {}
