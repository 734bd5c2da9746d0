"""One reply per prefix command, even when Discord delivers its message twice.

A RESUME after a takeover replays the messages the previous owner handled since its last saved
sequence; the command runs again (its effect is applied once: idempotency keys) and would
answer again. `GuildContext.send` claims the message (app/coord/replies.py) before a prefix
command's first reply: the loser raises `AlreadyAnswered`, which ends the command silently.
Slash commands need no claim: Discord accepts one response per interaction.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)


class AlreadyAnswered(commands.CommandError):
    """Another delivery of this message was answered already: say nothing more."""


class GuildContext(commands.Context[Any]):
    """The bot's command context: a prefix command answers its message at most once."""

    bot: GuildBot
    _claimed = False

    async def send(self, *args: Any, **kwargs: Any) -> discord.Message:
        """Send as discord.py does, after claiming a prefix command's message for its reply.

        Raises AlreadyAnswered when another delivery of the message claimed it first.
        """
        if self.interaction is None and not self._claimed:
            if not await self.bot.services.coord.replies.claim(self.message.id):
                log.info("message %s was answered already: not answering again", self.message.id)
                raise AlreadyAnswered()
            self._claimed = True
        return await super().send(*args, **kwargs)
