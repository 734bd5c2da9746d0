"""The one shape every moderation command shares.

check the target -> validate the input (no write) -> a note by prefix: only where only staff
read (privacy.keep_out_of_public) -> acknowledge (defer) a slash command -> the
command's own `before` step (a check that may refuse, or the fine's coin movement) -> open the
case, keyed by the request id, with its Discord action and the member's DM recorded pending and
claimed by this process -> do that work (apply.carry_out: DM, action, DM) -> modlog -> reply
with the case's real state.

A request delivered twice finds its case already open (before any check that depends on the
state the first delivery changed): it finishes whatever a crashed first delivery left pending
(if no other process holds it) and replies with the case as it stands (applied, pending,
failed), so the member is not told twice and nothing is done twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from app.bot import telemetry
from app.bot.acknowledge import acknowledge
from app.bot.checks import check_target
from app.bot.cogs.moderation.apply import carry_out
from app.bot.cogs.moderation.embeds import reply_text
from app.bot.cogs.moderation.notices import post_modlog
from app.bot.errors import Refusal
from app.bot.idempotency import request_key
from app.bot.privacy import keep_out_of_public
from app.domain import validation
from app.domain.moderation import DURATION_REQUIRED, REASON_REQUIRED
from app.domain.types import ActionState, CaseAction, CaseView

if TYPE_CHECKING:
    from app.bot.client import GuildBot

Ctx = commands.Context[Any]
log = logging.getLogger(__name__)


#: Cases that are staff data even in an acknowledgement ("Case #3: Note for @bob" tells that a
#: note exists): answered ephemerally, and refused as a prefix command in a channel non-staff
#: can read (the command's own text is the note).
PRIVATE = frozenset({CaseAction.NOTE})


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
    ctx: Ctx,
    step: Step,
    target_id: int,
    reason: str,
    duration: timedelta | None,
    delete_message_s: int = 0,
) -> CaseView:
    """Open the request's case, its Discord work claimed by this process.

    On a replay: the first case, marked `replayed`.
    """
    assert ctx.guild is not None
    bot: GuildBot = ctx.bot
    case = await bot.services.moderation.open_case(
        ctx.guild.id,
        step.action,
        target_id,
        ctx.author.id,
        reason,
        duration,
        key=request_key(ctx, "case"),
        notify=step.notify,
        delete_message_s=delete_message_s,
        claim_for=lease(bot),
    )
    if not case.replayed:
        telemetry.case_opened(step.action.value)
    return case


async def answered_privately(ctx: Ctx, action: CaseAction) -> bool:
    """Whether the answers about a case of `action` are ephemeral (PRIVATE).

    Raises Refusal, with the message deleted when the bot may, for such a prefix command in a
    channel non-staff can read (privacy.keep_out_of_public).
    """
    if action not in PRIVATE:
        return False
    await keep_out_of_public(ctx, "Notes")
    return True


def lease(bot: GuildBot) -> timedelta:
    """How long this process holds a case's Discord work before another may take it over."""
    return timedelta(seconds=bot.settings.outbox_lease_s)


async def run_action(
    ctx: Ctx,
    step: Step,
    target: discord.Member | discord.User,
    reason: str | None,
    *,
    duration: timedelta | None = None,
    before: Callable[[], Awaitable[object]] | None = None,
    delete_message_s: int = 0,
    extra: str = "",
) -> CaseView:
    """Carry out one moderation action for a command and reply with its case's state."""
    guild = ctx.guild
    assert guild is not None
    bot: GuildBot = ctx.bot
    check_target(ctx, target, step.verb)
    text = validation.reason(reason, required=step.action in REASON_REQUIRED)
    if step.action in DURATION_REQUIRED:
        validation.duration(duration, DURATION_REQUIRED[step.action])
    private = await answered_privately(ctx, step.action)
    await acknowledge(ctx, ephemeral=private)  # before any slow work: `before` may ask Discord
    key = request_key(ctx, "case")
    case = await bot.services.moderation.replay(key, guild.id, step.action, target.id)
    if case is None:  # a first delivery: its checks run against the state it found
        if before is not None:
            await before()
        case = await open_once(ctx, step, target.id, text, duration, delete_message_s)
    if not case.replayed:
        case = await finish(ctx, case, target)
    elif case.pending and (
        claimed := await bot.services.outbox.claim_case(
            guild.id, case.number, datetime.now(UTC), lease(bot)
        )
    ):
        case = await finish(ctx, claimed, target)  # what a crashed first delivery left
    if case.action_state == ActionState.FAILED:
        raise Refusal(
            f"Discord refused to {step.verb} {target.mention} ({case.action_note}). "
            f"Case #{case.number} was closed."
        )
    await ctx.send(reply_text(case, target.id, extra) + outcome(case), ephemeral=private)
    return case


async def finish(ctx: Ctx, case: CaseView, target: discord.Member | discord.User) -> CaseView:
    """Do the Discord work of a case this process holds, then tell the modlog.

    The case is recorded by now, so nothing here may turn the answer into an error: work that
    fails unexpectedly (the database gone for a moment) stays pending for the outbox, and the
    reply says so.
    """
    guild = ctx.guild
    assert guild is not None
    bot: GuildBot = ctx.bot
    try:
        if case.pending:
            case = await carry_out(bot, guild, case, user=target, moderator=str(ctx.author))
        await post_modlog(bot, guild, case)
    except Exception:
        log.exception("case %s of guild %s: left to the outbox", case.number, guild.id)
    bot.dispatch("case_work_changed", guild.id)
    return case


def outcome(case: CaseView) -> str:
    """What the reply adds about the Discord action when it is not simply done."""
    if case.action_state == ActionState.PENDING:
        return " Discord has not confirmed it yet; I will keep trying."
    if case.action_state == ActionState.SKIPPED:
        return f" It was not applied: {case.action_note}."
    return ""
