"""Bans, kicks, unbans and timeouts done by hand in Discord become cases too.

The source is GUILD_AUDIT_LOG_ENTRY_CREATE (moderation intent + View Audit Log). Entries made by
the bot itself are skipped: its own commands already opened their cases. The entry id is the
idempotency key, so a replayed event or two sessions on one shard open one case. The action is
already done in Discord, so the case records it applied and moves the member's effects (a
manual unban ends the ban a case held). The reason is Discord's text: cleaned and clipped
(validation.clean_text), never a reason to lose the record.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import discord
from discord.ext import commands

from app.bot import telemetry
from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation.notices import post_modlog
from app.domain.errors import DomainError
from app.domain.idempotency import request_key
from app.domain.moderation import TIMEOUT_MAX
from app.domain.types import CaseAction
from app.domain.validation import clean_text

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
        # A user action's target: a Member, a User, or an Object when neither is cached.
        if kind is None or not isinstance(target, discord.Member | discord.User | discord.Object):
            return
        if entry.user_id == target.id:
            return
        action, duration = kind
        async with self.bot.inflight.track():
            try:
                case = await self.bot.services.moderation.open_case(
                    entry.guild.id,
                    action,
                    target.id,
                    entry.user_id,
                    clean_text(entry.reason) or NO_REASON,
                    duration,
                    key=request_key("audit", entry.id),
                    now=started,
                    done_in_discord=True,
                )
            except DomainError as error:
                log.info("audit entry %s not recorded: %s", entry.id, error.message)
                return
            if case.replayed:
                return  # a replayed event: the case and its modlog post exist already
            telemetry.case_opened(action.value)
            if case.expires_at is not None:
                self.bot.dispatch("case_work_changed", entry.guild.id)
            await post_modlog(self.bot, entry.guild, case)
