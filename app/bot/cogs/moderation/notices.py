"""Telling people about cases: the member by DM, the moderators in the modlog channel."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from app.bot.cogs.moderation.embeds import case_embed, dm_embed
from app.bot.privacy import non_staff_reader
from app.domain.types import CaseView

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)


async def notify_member(
    user: discord.Member | discord.User, guild: discord.Guild, case: CaseView
) -> bool:
    """DM the member about `case`; False when it did not arrive (closed DMs are normal)."""
    try:
        await user.send(embed=dm_embed(guild.name, case))
    except discord.Forbidden:
        return False
    except discord.HTTPException as error:
        log.warning("DM for case %s in guild %s failed: %s", case.number, guild.id, error)
        return False
    return True


async def post_modlog(
    bot: GuildBot, guild: discord.Guild, case: CaseView, title: str | None = None
) -> bool:
    """Post the case to the guild's modlog channel, if one is set; False if not posted.

    Not posted either while the channel is readable by someone without a moderation
    permission: its permissions may have changed since `config modlog` checked them.
    """
    channel_id = (await bot.services.guilds.cached(guild.id)).modlog_channel_id
    if channel_id is None:
        return False
    channel = guild.get_channel(channel_id)
    if not isinstance(channel, discord.TextChannel | discord.Thread):
        log.info("modlog channel %s of guild %s is gone", channel_id, guild.id)
        return False
    if (reader := non_staff_reader(channel)) is not None:  # opened up since it was chosen
        log.warning(
            "modlog channel %s of guild %s is readable by %s: case %s not posted there",
            channel_id,
            guild.id,
            reader,
            case.number,
        )
        return False
    try:
        await channel.send(embed=case_embed(case, title=title))
    except discord.HTTPException as error:
        log.warning("modlog post for case %s in guild %s failed: %s", case.number, guild.id, error)
        return False
    return True


def audit_reason(case: CaseView, moderator: str | None = None) -> str:
    """The reason Discord's audit log shows for an action the bot takes (max 512)."""
    who = moderator or f"moderator {case.moderator_id}"
    text = f"{who} (case #{case.number}): {case.reason or 'no reason given'}"
    return text[:512]
