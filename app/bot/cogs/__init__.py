"""The bot's cogs, one module (or package) per feature area."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

if TYPE_CHECKING:
    from app.bot.client import GuildBot


def build_cogs(bot: GuildBot) -> list[commands.Cog]:
    """Every cog, ready to add to `bot`."""
    from app.bot.cogs.config import Config
    from app.bot.cogs.economy import Economy
    from app.bot.cogs.help import Help
    from app.bot.cogs.levels import Levels
    from app.bot.cogs.moderation import moderation_cogs

    return [Economy(bot), Levels(bot), Config(bot), *moderation_cogs(bot), Help(bot)]
