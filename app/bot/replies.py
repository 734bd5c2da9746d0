"""One reply per prefix command, even when Discord delivers its message twice.

A RESUME after a takeover replays the messages the previous owner handled since its last saved
sequence; the command runs again (its effect is applied once: idempotency keys) and would
answer again. Two things keep that to one answer:

- Every reply goes out under a nonce made from the command's message id and the reply's rank
  (`enforce_nonce`, which discord.py always sets): Discord returns the message already sent
  under that nonce by the bot within the last few minutes instead of posting a second one.
- `GuildContext.send` claims the message (app/coord/replies.py) before the first reply. A
  delivery that finds it claimed still answers while the message is young enough for Discord's
  nonce memory (NONCE_TRUSTED_S): the claimer may have been killed after the command's effect
  and before its answer, and the member must get one. Past that age it stays silent
  (`AlreadyAnswered`): a second answer is then the risk, and the first delivery's was likely sent.

Slash commands need neither: Discord accepts one response per interaction.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: Up to this age of its message a claimed prefix command still answers, under the same nonce
#: as any earlier answer. Discord remembers nonces for "the past few minutes"; a minute is
#: well within that.
NONCE_TRUSTED_S = 60.0


class AlreadyAnswered(commands.CommandError):
    """Another delivery of this message was answered already: say nothing more."""


class GuildContext(commands.Context[Any]):
    """The bot's command context: a prefix command answers its message once."""

    bot: GuildBot
    _replies = 0

    async def send(self, *args: Any, **kwargs: Any) -> discord.Message:
        """Send as discord.py does; a prefix command's replies go under deterministic nonces.

        Raises AlreadyAnswered when another delivery of the message claimed it first and the
        message is too old for Discord to still know the nonce of that delivery's answer.
        """
        if self.interaction is None:
            if self._replies == 0:
                await self._claim()
            kwargs.setdefault("nonce", reply_nonce(self.message.id, self._replies))
            self._replies += 1
        return await super().send(*args, **kwargs)

    async def _claim(self) -> None:
        """Claim the message before its first reply; AlreadyAnswered when that must not go."""
        message_id = self.message.id
        if await self.bot.services.coord.replies.claim(message_id):
            return
        if self.age() > NONCE_TRUSTED_S:
            log.info("message %s was answered already: not answering again", message_id)
            raise AlreadyAnswered()
        log.info("message %s claimed by another delivery: answering under its nonce", message_id)

    def age(self) -> float:
        """Seconds since the command's message was sent."""
        return (discord.utils.utcnow() - self.message.created_at).total_seconds()


def reply_nonce(message_id: int, rank: int) -> str:
    """The nonce of a prefix command's `rank`-th reply: the same on every delivery (<= 25 chars)."""
    return f"{message_id}.{rank}"
