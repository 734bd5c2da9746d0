"""XP for chat messages and level-up announcements."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from app.bot.cogs.base import GuildCog
from app.bot.rest_gate import low_priority

log = logging.getLogger(__name__)


def earns_xp(message: discord.Message) -> bool:
    """Guild messages by people (not bots, webhooks or system messages)."""
    return (
        message.guild is not None
        and not message.author.bot
        and message.webhook_id is None
        and message.type in (discord.MessageType.default, discord.MessageType.reply)
    )


class Levels(GuildCog):
    """Awards XP on every message and announces level-ups where the guild wants them."""

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Award XP (the domain applies the cooldown and the no-XP channels)."""
        if not earns_xp(message) or not self.bot.has_services or self.bot.draining:
            return
        if message.content.startswith(tuple(await self.bot.get_prefix(message))):
            return  # commands earn nothing, so a refused command writes nothing
        assert message.guild is not None
        async with self.bot.inflight.track():
            award = await self.bot.services.levels.award_message_xp(
                message.guild.id,
                message.author.id,
                message.channel.id,
                display_name=message.author.display_name,
            )
        if award is not None and award.leveled_up:
            with low_priority():  # after commands and moderation when the REST budget is short
                await self.announce(message, award.progress.level)

    async def announce(self, message: discord.Message, level: int) -> None:
        """Tell the member, in the configured channel, by DM, or in the same channel."""
        assert message.guild is not None
        config = await self.bot.services.guilds.cached(message.guild.id)
        author = message.author
        text = f"{author.mention} reached level {level}!"
        destination: discord.abc.Messageable = message.channel
        if config.levelup_dm:
            destination = author
            text = f"You reached level {level} in {message.guild.name}!"
        elif config.levelup_channel_id:
            channel = message.guild.get_channel(config.levelup_channel_id)
            if isinstance(channel, discord.TextChannel | discord.Thread):
                destination = channel
        try:
            await destination.send(text, allowed_mentions=discord.AllowedMentions(users=[author]))
        except discord.HTTPException as error:
            log.info("level-up message not delivered in guild %s: %s", message.guild.id, error)
