"""Doing a claimed case's Discord work: the member's DM, the action, lifting its effect.

The order is the one a moderator expects: the DM before a kick or ban (while the member can
still be reached), the action, the DM after any other action, then lifting the effect (a
pardon, a tempban's end). Each step is recorded as soon as it is done, so a process that stops
midway leaves the rest to whoever claims the case next (app/domain/outbox.py).

A ban or timeout is not replayed blindly: Discord is made to match the member's effect row as
it is when the call is made, and read again afterwards, so an action that lands after a newer
decision (a crash, a slow call, two moderators at once) is corrected at once. A case whose
effect a newer case took before it was applied is skipped, not applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import discord

from app.bot.cogs.moderation.notices import audit_reason, notify_member
from app.domain.effects import EFFECT_OF
from app.domain.types import ActionState, CaseAction, CaseView, DmState, EffectKind

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: Failures worth another attempt later (Discord unavailable, the network), not a refusal.
TRANSIENT: tuple[type[BaseException], ...] = (
    discord.DiscordServerError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)
DM_FIRST = frozenset({CaseAction.KICK, CaseAction.BAN, CaseAction.TEMPBAN})
ENDS_KIND = {CaseAction.UNBAN: EffectKind.BAN, CaseAction.UNTIMEOUT: EffectKind.TIMEOUT}
SYNC_ROUNDS = 4
RETRY_MAX_S = 60.0


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before the next attempt: 2, 4, 8 ... seconds, at most a minute."""
    return timedelta(seconds=min(2.0 ** max(attempts, 1), RETRY_MAX_S))


async def carry_out(
    bot: GuildBot,
    guild: discord.Guild,
    case: CaseView,
    *,
    user: discord.Member | discord.User | None = None,
    moderator: str | None = None,
) -> CaseView:
    """Do the pending work of a case this process has claimed, then end the claim.

    `user` and `moderator` spare REST calls when the caller already has them. A transient
    failure leaves the rest pending for a later attempt; the case as it now stands is returned.
    """
    outbox = bot.services.outbox
    try:
        if case.dm_state == DmState.PENDING and case.action in DM_FIRST:
            case = await _send_dm(bot, guild, case, user)
        if case.action_state == ActionState.PENDING:
            case = await _act(bot, guild, case, moderator)
        if case.dm_state == DmState.PENDING:
            case = await _send_dm(bot, guild, case, user)
        if case.lift_state == ActionState.PENDING:
            case = await _lift(bot, guild, case)
    except TRANSIENT as error:
        log.warning(
            "case %s of guild %s: Discord work failed, will retry: %r", case.number, guild.id, error
        )
        retry_at = datetime.now(UTC) + retry_delay(case.attempts)
        released = await outbox.release(guild.id, case.number, retry_at)
        bot.dispatch("case_work_changed", guild.id)
        return released
    return await outbox.release(guild.id, case.number)


async def _send_dm(
    bot: GuildBot, guild: discord.Guild, case: CaseView, user: discord.Member | discord.User | None
) -> CaseView:
    """Send the member's DM once: marked sending first, so it is never sent twice."""
    outbox = bot.services.outbox
    if not await outbox.start_dm(guild.id, case.number):
        return await bot.services.moderation.get_case(guild.id, case.number)
    try:
        member = user or await bot.fetch_user(case.target_id)
    except discord.NotFound:
        return await outbox.settle(guild.id, case.number, dm=DmState.UNDELIVERED)
    delivered = await notify_member(member, guild, case)
    state = DmState.DELIVERED if delivered else DmState.UNDELIVERED
    return await outbox.settle(guild.id, case.number, dm=state)


async def _act(
    bot: GuildBot, guild: discord.Guild, case: CaseView, moderator: str | None
) -> CaseView:
    """The case's own action: a kick, or making the member's ban or timeout match the model."""
    why = audit_reason(case, moderator)
    if case.action == CaseAction.KICK:
        return await _step(bot, case, False, None, lambda: _kick(guild, case.target_id, why))
    holds = case.action in EFFECT_OF
    kind = EFFECT_OF.get(case.action) or ENDS_KIND[case.action]
    live = await bot.services.outbox.live(guild.id, case.target_id, kind)
    if holds and live is None:
        blocked: str | None = "it ended first"
    elif holds and live is not None and live.number != case.number:
        blocked = f"case #{live.number} replaced it first"
    else:
        blocked = None if holds or live is None else f"case #{live.number} holds the {kind} now"
    return await _step(
        bot,
        case,
        False,
        blocked,
        lambda: sync(bot, guild, case.target_id, kind, why, case.delete_message_s),
    )


async def _lift(bot: GuildBot, guild: discord.Guild, case: CaseView) -> CaseView:
    """Lift the effect a pardoned or ended case held, unless a newer case holds it now."""
    kind = EFFECT_OF[case.action]
    live = await bot.services.outbox.live(guild.id, case.target_id, kind)
    blocked = f"case #{live.number} holds the {kind} now" if live else None
    why = f"Case #{case.number} {case.state.value}"
    return await _step(
        bot, case, True, blocked, lambda: sync(bot, guild, case.target_id, kind, why)
    )


async def _step(
    bot: GuildBot,
    case: CaseView,
    lifting: bool,
    blocked: str | None,
    work: Callable[[], Awaitable[str | None]],
) -> CaseView:
    """Run one piece of Discord work, unless `blocked` says why not, and record its outcome.

    The outcome is the case's action or, when `lifting`, its lift; transient failures propagate.
    """

    async def record(state: ActionState, note: str) -> CaseView:
        return await bot.services.outbox.settle(
            case.guild_id,
            case.number,
            action=None if lifting else state,
            lift=state if lifting else None,
            note=note,
        )

    if blocked is not None:
        return await record(ActionState.SKIPPED, blocked)
    try:
        note = await work() or ""
    except discord.HTTPException as error:
        if isinstance(error, TRANSIENT):
            raise
        return await record(ActionState.FAILED, f"{error.status}: {error.text or 'no details'}")
    return await record(ActionState.APPLIED, note)


async def _kick(guild: discord.Guild, target_id: int, why: str) -> str | None:
    try:
        await guild.kick(discord.Object(target_id), reason=why)
    except discord.NotFound:
        return "they had left"
    return None


async def sync(
    bot: GuildBot,
    guild: discord.Guild,
    target_id: int,
    kind: EffectKind,
    why: str,
    delete_message_s: int = 0,
) -> None:
    """Make the member's ban (or timeout) in Discord what the effect row says.

    The row is read again afterwards: if it changed meanwhile, the newer state is applied too.
    """
    outbox = bot.services.outbox
    live = await outbox.live(guild.id, target_id, kind)
    for _ in range(SYNC_ROUNDS):
        if kind == EffectKind.BAN:
            await _set_ban(guild, target_id, live is not None, why, delete_message_s)
        else:
            await _set_timeout(guild, target_id, live.until if live else None, why)
        again = await outbox.live(guild.id, target_id, kind)
        if again == live:
            return
        live, delete_message_s = again, 0
    log.warning("member %s of guild %s: the %s kept changing", target_id, guild.id, kind.value)


async def _set_ban(
    guild: discord.Guild, target_id: int, banned: bool, why: str, delete_message_s: int
) -> None:
    user = discord.Object(target_id)
    if banned:
        await guild.ban(user, reason=why, delete_message_seconds=delete_message_s)
        return
    with contextlib.suppress(discord.NotFound):  # not banned: nothing to lift
        await guild.unban(user, reason=why)


async def _set_timeout(
    guild: discord.Guild, target_id: int, until: datetime | None, why: str
) -> None:
    try:
        member = await guild.fetch_member(target_id)
    except discord.NotFound:
        return  # not in the server: Discord holds no timeout for them
    if until is not None and until <= datetime.now(UTC):
        until = None
    if until is None and not member.is_timed_out():
        return
    await member.timeout(until, reason=why)
