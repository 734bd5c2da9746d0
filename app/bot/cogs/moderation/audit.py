"""Bans, kicks, unbans and timeouts done by hand in Discord become cases too.

The source is GUILD_AUDIT_LOG_ENTRY_CREATE (moderation intent + View Audit Log). Entries made by
the bot itself are skipped: its own commands already opened their cases. The entry id is the
idempotency key, so a replayed event or two sessions on one shard open one case.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import discord
from discord.ext import commands

from app.bot import telemetry
from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation.notices import post_modlog
from app.db.models import CaseAction
from app.domain import moderation
from app.domain.errors import DomainError
from app.domain.moderation import TIMEOUT_MAX

log = logging.getLogger(__name__)
A = discord.AuditLogAction
SIMPLE = {A.ban: CaseAction.BAN, A.kick: CaseAction.KICK, A.unban: CaseAction.UNBAN}
NO_REASON = "Done in Discord; no reason given."


def timeout_change(
    entry: discord.AuditLogEntry, start: datetime
) -> tuple[CaseAction, timedelta | None] | None:
    """(TIMEOUT, time left from `start`) or (UNTIMEOUT, None) for a timeout change."""
    if not hasattr(entry.after, "timed_out_until") and not hasattr(entry.before, "timed_out_until"):
        return None
    until: datetime | None = getattr(entry.after, "timed_out_until", None)
    if until is None or until <= start:
        return CaseAction.UNTIMEOUT, None
    return CaseAction.TIMEOUT, min(until - start, TIMEOUT_MAX)


def classify(
    entry: discord.AuditLogEntry, now: datetime
) -> tuple[CaseAction, timedelta | None] | None:
    """The case an audit entry stands for, or None when it is not a moderation action."""
    if entry.action in SIMPLE:
        return SIMPLE[entry.action], None
    if entry.action == A.member_update:
        return timeout_change(entry, now)
    return None


class AuditLog(GuildCog):
    """Turns moderation done by hand into cases."""

    @commands.Cog.listener()
    async def on_audit_log_entry_create(self, entry: discord.AuditLogEntry) -> None:
        """Open a case for a manual ban, kick, unban or timeout change."""
        me = self.bot.user
        if entry.user_id is None or (me is not None and entry.user_id == me.id):
            return
        started = datetime.now(UTC)
        kind = classify(entry, started)
        target = entry.target
        if kind is None or target is None or entry.user_id == target.id:
            return
        action, duration = kind
        async with self.bot.inflight.track():
            try:
                case = await moderation.open_case(
                    entry.guild.id,
                    action,
                    target.id,
                    entry.user_id,
                    (entry.reason or NO_REASON)[:1024],
                    duration,
                    key=f"audit:{entry.id}",
                    now=started,
                )
                if case.created_at == started:
                    telemetry.case_opened(action.value)
            except DomainError as error:
                log.info("audit entry %s not recorded: %s", entry.id, error.message)
                return
            if case.created_at != started:
                return  # a replayed event: the case and its modlog post exist already
            if case.expires_at is not None:
                self.bot.dispatch("case_expiry_changed", entry.guild.id)
            await post_modlog(entry.guild, case)
