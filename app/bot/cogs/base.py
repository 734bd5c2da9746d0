"""The base of every cog: the bot typed, and errors handled inline.

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

    async def cog_command_error(  # type: ignore[override]
        self, ctx: commands.Context[Any], error: Exception
    ) -> None:
        """Reply to a failed command of this cog (see app.bot.errors)."""
        await errors.on_command_error(ctx, error)  # type: ignore[arg-type]
