"""Each command's deadline, made from its request (the rule itself is app/ops/deadline.py).

The command wrappers call these: GuildTree.around for slash commands, GuildBot.invoke for
prefix commands. A request that reached the bot past its window is not run: it is logged and
counted (guildbot_commands_expired_total{command,form}), and a prefix command is told so (a
late interaction cannot be answered at all: Discord refuses the response).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import discord

from app.bot import telemetry
from app.config import Settings
from app.ops.deadline import FIRST_RESPONSE_S, TOKEN_LIFETIME_S, Deadline

log = logging.getLogger(__name__)


def of_interaction(
    interaction: discord.Interaction[Any], settings: Settings, *, adopted: bool = False
) -> Deadline:
    """A slash command's deadline: 3 s for the first response, 15 min once acknowledged.

    `adopted`: an earlier delivery acknowledged it, so it may start within the 15 minutes.
    """
    return Deadline(
        form="slash",
        created=interaction.created_at.timestamp(),
        arrived=time.time(),
        window=TOKEN_LIFETIME_S if adopted else FIRST_RESPONSE_S,
        skew=settings.clock_skew_s,
        timeout=settings.command_timeout_s,
        acknowledged=interaction.response.is_done,
    )


def of_message(message: discord.Message, settings: Settings) -> Deadline:
    """A prefix command's deadline: it must arrive within PREFIX_COMMAND_MAX_AGE_S."""
    return Deadline(
        form="prefix",
        created=message.created_at.timestamp(),
        arrived=time.time(),
        window=settings.prefix_command_max_age_s,
        skew=settings.clock_skew_s,
        timeout=settings.command_timeout_s,
    )


def arrived_too_late(deadline: Deadline, command: str, request_id: int) -> bool:
    """True, logged and counted, when the request must not run: it arrived past its window."""
    if not deadline.expired():
        return False
    telemetry.command_expired(command, deadline.form)
    log.warning(
        "not running %s command %s (request %d): it reached the bot %.1f s after it was sent,"
        " past its %.0f s window (clock skew margin %.1f s)",
        deadline.form,
        command,
        request_id,
        deadline.age_on_arrival,
        deadline.window,
        deadline.skew,
    )
    return True


def too_late_reply(deadline: Deadline) -> str:
    """What a member is told about a prefix command that arrived too late to run."""
    return (
        f"I received this command {deadline.age_on_arrival:.0f} s after you sent it, too late"
        " to act on it, so I did nothing. Please send it again."
    )
