"""Moderation: actions that open cases, history, the outbox loop and the audit-log listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

if TYPE_CHECKING:
    from app.bot.client import GuildBot


def moderation_cogs(bot: GuildBot) -> list[commands.Cog]:
    """The moderation cogs, ready to add to `bot`."""
    from app.bot.cogs.moderation.actions import Actions
    from app.bot.cogs.moderation.audit import AuditLog
    from app.bot.cogs.moderation.history import History
    from app.bot.cogs.moderation.outbox import Outbox

    return [Actions(bot), History(bot), Outbox(bot), AuditLog(bot)]
