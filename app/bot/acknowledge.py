"""Acknowledging a slash command before its slow work; adopting one left waiting.

A slash command is acknowledged (deferred) before its slow work. An interaction that an earlier
delivery acknowledged and left waiting is adopted.

Discord delivers an interaction again when a session's missed events are replayed (after a
RESUME by the shard's next owner) or when two sessions briefly hold one shard. An earlier
delivery may have deferred it, then stopped before its follow-up: the member sees "thinking..."
and the reply is still ours to send, through the follow-up webhook, for 15 minutes.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from app.bot import discord_internals as internals
from app.bot.errors import ALREADY_ACKNOWLEDGED

log = logging.getLogger(__name__)


async def acknowledge(ctx: commands.Context[Any], *, ephemeral: bool = False) -> None:
    """Defer the reply of a slash command (nothing for a prefix command).

    Nothing to do when the interaction was adopted (`left_waiting`); when Discord refuses the
    deferral because an earlier delivery sent it (40060), the interaction is marked answered and
    the reply goes to the follow-up that delivery left waiting. Any other refusal raises, so the
    command does nothing: 10062 means the deferral came too late and nobody will see an answer.
    """
    interaction = ctx.interaction
    if interaction is None or interaction.response.is_done():
        return
    try:
        await internals.defer_without_response(interaction, ephemeral=ephemeral)
    except discord.HTTPException as error:
        if error.code != ALREADY_ACKNOWLEDGED:
            raise
        internals.mark_answered(interaction)


async def left_waiting(interaction: discord.Interaction[Any]) -> bool:
    """True when an earlier delivery deferred this interaction and never answered it.

    Asks Discord for the original response: a deferred one that was never filled is still
    "loading". Anything else (no response at all, an answer already given, an error or an
    expired token) is False: the late delivery must not run.
    """
    try:
        original = await interaction.original_response()
    except discord.HTTPException as error:
        log.debug("interaction %s has no response to adopt: %s", interaction.id, error)
        return False
    return original.flags.loading


async def adopt(interaction: discord.Interaction[Any]) -> bool:
    """Take over an interaction that arrived past its 3 s window, if one was left waiting.

    True when it was: it is marked answered, so its reply goes to the follow-up webhook.
    """
    if not await left_waiting(interaction):
        return False
    internals.mark_answered(interaction)
    log.info("adopted interaction %s: an earlier delivery deferred it", interaction.id)
    return True
