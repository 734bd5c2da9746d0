"""The base of every cog: the bot typed, extra words refused, and errors handled inline.

Every command of a cog refuses words left over after its last argument (ignore_extra=False):
"!balance @bob" is refused instead of answering about the caller.

discord.py hands command errors to on_command_error as a separate task, after the command has
returned; a cog's cog_command_error is awaited inside the command instead, so the error reply
counts as in flight and is sent before a draining bot closes its HTTP session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discord.ext import commands

from app.bot import errors

if TYPE_CHECKING:
    from app.bot.client import GuildBot


class GuildCog(commands.Cog):
    """A cog of the bot."""

    def __init__(self, bot: GuildBot) -> None:
        self.bot = bot
        for command in self.walk_commands():
            command.ignore_extra = False

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        """Reply to a failed command of this cog (see app.bot.errors)."""
        await errors.on_command_error(ctx, error)
