"""The one shape every moderation command shares.

check the target -> validate the input (no write) -> the command's own `before` step (a check
that may refuse, or the fine's coin movement) -> open the case, keyed by the request id -> DM
the member (before a kick or ban, while they can still be reached) -> the Discord action -> DM
(other actions) -> record the DM -> modlog -> reply.

A request delivered twice finds its case already open and only repeats the reply, so the member
is not told twice and the action is not repeated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from app.bot import telemetry
from app.bot.checks import check_target
from app.bot.cogs.moderation.embeds import reply_text
from app.bot.cogs.moderation.notices import notify_member, post_modlog
from app.bot.errors import Refusal
from app.bot.idempotency import request_key
from app.db.models import Case, CaseAction
from app.domain import moderation, validation
from app.domain.moderation import DURATION_REQUIRED, REASON_REQUIRED

if TYPE_CHECKING:
    from app.bot.client import GuildBot

Ctx = commands.Context[Any]


@dataclass(frozen=True, slots=True)
class Step:
    """What kind of action a command takes and how the member hears of it."""

    action: CaseAction
    verb: str
    notify: bool = True
    notify_first: bool = False


WARN = Step(CaseAction.WARN, "warn")
NOTE = Step(CaseAction.NOTE, "add a note about", notify=False)
TIMEOUT = Step(CaseAction.TIMEOUT, "time out")
UNTIMEOUT = Step(CaseAction.UNTIMEOUT, "lift the timeout of")
KICK = Step(CaseAction.KICK, "kick", notify_first=True)
BAN = Step(CaseAction.BAN, "ban", notify_first=True)
TEMPBAN = Step(CaseAction.TEMPBAN, "ban", notify_first=True)
UNBAN = Step(CaseAction.UNBAN, "unban", notify=False)
FINE = Step(CaseAction.FINE, "fine")


async def open_once(
    ctx: Ctx, step: Step, target_id: int, reason: str, duration: timedelta | None
) -> tuple[Case, bool]:
    """Open the request's case; (case, True) the first time, (first case, False) on a replay."""
    assert ctx.guild is not None
    started = datetime.now(UTC)
    case = await moderation.open_case(
        ctx.guild.id,
        step.action,
        target_id,
        ctx.author.id,
        reason,
        duration,
        key=request_key(ctx, "case"),
        now=started,
    )
    created = case.created_at == started
    if created:
        telemetry.case_opened(step.action.value)
    return case, created


async def run_action(
    ctx: Ctx,
    step: Step,
    target: discord.abc.User,
    reason: str | None,
    *,
    duration: timedelta | None = None,
    before: Callable[[], Awaitable[object]] | None = None,
    perform: Callable[[Case], Awaitable[object]] | None = None,
    extra: str = "",
) -> Case:
    """Carry out one moderation action for a command and reply with its case number."""
    guild = ctx.guild
    assert guild is not None
    check_target(ctx, target, step.verb)
    text = validation.reason(reason, required=step.action in REASON_REQUIRED)
    if step.action in DURATION_REQUIRED:
        validation.duration(duration, DURATION_REQUIRED[step.action])
    if before is not None:
        await before()
    await ctx.defer()
    case, fresh = await open_once(ctx, step, target.id, text, duration)
    if fresh:
        await _carry_out(ctx, step, target, case, perform)
    await ctx.send(reply_text(case, target.id, extra))
    return case


async def _carry_out(
    ctx: Ctx,
    step: Step,
    target: discord.abc.User,
    case: Case,
    perform: Callable[[Case], Awaitable[object]] | None,
) -> None:
    guild = ctx.guild
    assert guild is not None
    bot: GuildBot = ctx.bot
    delivered: bool | None = None
    if step.notify and step.notify_first:
        delivered = await notify_member(target, guild, case)
    if perform is not None:
        try:
            await perform(case)
        except discord.HTTPException as error:
            if delivered is not None:
                await moderation.record_dm(case, delivered)
            await moderation.expire(case.id, f"Discord refused the action: {error.status}")
            raise Refusal(
                f"Discord refused to {step.verb} {target.mention} ({error.status}: "
                f"{error.text or 'no details'}). Case #{case.number} was closed."
            ) from error
    if step.notify and not step.notify_first:
        delivered = await notify_member(target, guild, case)
    if delivered is not None:
        await moderation.record_dm(case, delivered)
    await post_modlog(guild, case)
    if case.expires_at is not None:
        bot.dispatch("case_expiry_changed", guild.id)
