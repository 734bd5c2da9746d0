"""Moderation cases: numbered per guild, searchable, editable with an audit trail.

A case number comes from the guild's counter row, incremented in the same transaction that
inserts the case, so numbers run 1, 2, 3 ... with no gap and no duplicate even when many
processes open cases at once (the counter's row lock serialises them; a rollback returns the
number). Reason and state changes are appended to case_edits, never overwritten silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.db.models import Case, CaseAction, CaseEdit, CaseState, GuildSettings
from app.db.retry import retrying
from app.domain import guilds, validation
from app.domain.errors import (
    CaseNotFound,
    CaseStateError,
    InvalidDuration,
    InvalidInput,
    SelfTarget,
)

TIMEOUT_MAX = timedelta(days=28)
TEMPBAN_MAX = timedelta(days=3650)
PAGE_MAX = 50

REASON_REQUIRED = frozenset({CaseAction.WARN, CaseAction.NOTE, CaseAction.FINE})
DURATION_REQUIRED = {CaseAction.TIMEOUT: TIMEOUT_MAX, CaseAction.TEMPBAN: TEMPBAN_MAX}
# Opening a case of the key's action ends the listed actions still active on that member, so
# an older timeout or tempban can never expire and undo a newer decision.
SUPERSEDES = {
    CaseAction.TIMEOUT: (CaseAction.TIMEOUT,),
    CaseAction.UNTIMEOUT: (CaseAction.TIMEOUT,),
    CaseAction.BAN: (CaseAction.TEMPBAN,),
    CaseAction.TEMPBAN: (CaseAction.TEMPBAN,),
    CaseAction.UNBAN: (CaseAction.TEMPBAN,),
}


@dataclass(frozen=True, slots=True)
class CasePage:
    """Cases newest first, and the cursor for the next (older) page, if any."""

    cases: list[Case]
    next_before: int | None


async def open_case(
    guild_id: int,
    action: CaseAction | str,
    target_id: int,
    moderator_id: int,
    reason: str | None = "",
    duration: timedelta | None = None,
    *,
    key: str | None = None,
    now: datetime | None = None,
) -> Case:
    """Open a case with the guild's next number; with `key`, a repeat returns the first case."""
    validation.snowflake(guild_id, "guild")
    validation.snowflake(target_id, "member")
    validation.snowflake(moderator_id, "moderator")
    try:
        action = CaseAction(action)
    except ValueError:
        raise InvalidInput("Unknown moderation action.") from None
    text = validation.reason(reason, required=action in REASON_REQUIRED)
    if action in DURATION_REQUIRED:
        duration = validation.duration(duration, DURATION_REQUIRED[action])
    elif duration is not None:
        raise InvalidDuration(f"A {action.value} takes no duration.")
    if target_id == moderator_id:
        raise SelfTarget("You cannot open a case against yourself.")
    if key is not None:
        existing = await Case.get_or_none(idempotency_key=key)
        if existing is not None:
            return existing
    await guilds.settings(guild_id)
    now = now or datetime.now(UTC)

    async def attempt() -> Case:
        async with in_transaction():
            await GuildSettings.filter(guild_id=guild_id).update(
                last_case_number=F("last_case_number") + 1
            )
            number = (
                await GuildSettings.filter(guild_id=guild_id)
                .first()
                .values_list("last_case_number", flat=True)
            )
            case = await Case.create(
                guild_id=guild_id,
                number=number,
                action=action,
                target_id=target_id,
                moderator_id=moderator_id,
                reason=text,
                created_at=now,
                expires_at=now + duration if duration else None,
                idempotency_key=key,
            )
            for old in await Case.filter(
                guild_id=guild_id,
                target_id=target_id,
                state=CaseState.ACTIVE,
                action__in=SUPERSEDES.get(action, ()),
                number__lt=number,
            ).select_for_update():
                await _set_state(
                    old, CaseState.EXPIRED, moderator_id, f"superseded by case {number}"
                )
            return case

    try:
        return await retrying(attempt)
    except IntegrityError:
        if key is not None and (existing := await Case.get_or_none(idempotency_key=key)):
            return existing
        raise


async def get_case(guild_id: int, number: int) -> Case:
    """The case with that number in this guild, or CaseNotFound."""
    validation.snowflake(guild_id, "guild")
    validation.case_number(number)
    case = await Case.get_or_none(guild_id=guild_id, number=number)
    if case is None:
        raise CaseNotFound(f"There is no case #{number} in this server.")
    return case


async def edits(case: Case) -> list[CaseEdit]:
    """Every recorded change of a case, oldest first."""
    return await CaseEdit.filter(case_id=case.id).order_by("id")


async def history(
    guild_id: int,
    target_id: int | None = None,
    *,
    action: CaseAction | str | None = None,
    moderator_id: int | None = None,
    since: datetime | None = None,
    before: int | None = None,
    limit: int = 10,
) -> CasePage:
    """A guild's cases, newest first, filtered; `before` is the keyset cursor (a case number)."""
    validation.snowflake(guild_id, "guild")
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"A page holds 1 to {PAGE_MAX} cases.")
    query = Case.filter(guild_id=guild_id)
    if target_id is not None:
        query = query.filter(target_id=validation.snowflake(target_id, "member"))
    if moderator_id is not None:
        query = query.filter(moderator_id=validation.snowflake(moderator_id, "moderator"))
    if action is not None:
        try:
            query = query.filter(action=CaseAction(action))
        except ValueError:
            raise InvalidInput("Unknown moderation action.") from None
    if since is not None:
        query = query.filter(created_at__gte=since)
    if before is not None:
        query = query.filter(number__lt=validation.case_number(before))
    rows = await query.order_by("-number").limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return CasePage(rows, rows[-1].number if more else None)


async def export(
    guild_id: int, target_id: int | None = None, chunk: int = 1000
) -> AsyncIterator[Case]:
    """Every case of a guild (or of one member), oldest first, read in keyset chunks."""
    validation.snowflake(guild_id, "guild")
    last = 0
    while True:
        query = Case.filter(guild_id=guild_id, number__gt=last)
        if target_id is not None:
            query = query.filter(target_id=target_id)
        rows = await query.order_by("number").limit(chunk)
        for row in rows:
            yield row
        if len(rows) < chunk:
            return
        last = rows[-1].number


async def edit_reason(guild_id: int, number: int, editor_id: int, new_reason: str) -> Case:
    """Replace a case's reason, recording who changed it and the old text."""
    validation.snowflake(editor_id, "moderator")
    text = validation.reason(new_reason, required=True)
    async with in_transaction():
        case = await _locked_case(guild_id, number)
        if case.reason != text:
            await CaseEdit.create(
                case_id=case.id,
                editor_id=editor_id,
                field="reason",
                old_value=case.reason,
                new_value=text,
            )
            case.reason = text
            await case.save(update_fields=["reason"])
    return case


async def pardon(guild_id: int, number: int, moderator_id: int, reason: str) -> Case:
    """Mark a case pardoned (it no longer counts against the member); the reason is recorded."""
    validation.snowflake(moderator_id, "moderator")
    text = validation.reason(reason, required=True)
    async with in_transaction():
        case = await _locked_case(guild_id, number)
        if case.state == CaseState.PARDONED:
            raise CaseStateError(f"Case #{number} is already pardoned.")
        await _set_state(case, CaseState.PARDONED, moderator_id, text)
    return case


async def due(
    now: datetime, guild_ids: Iterable[int] | None = None, limit: int = 100
) -> list[Case]:
    """Active timeouts and tempbans whose time is up, oldest first (index cases_expiring_idx)."""
    query = Case.filter(state=CaseState.ACTIVE, expires_at__lte=now)
    if guild_ids is not None:
        query = query.filter(guild_id__in=list(guild_ids))
    return await query.order_by("expires_at").limit(limit)


async def next_expiry(guild_ids: Iterable[int] | None = None) -> datetime | None:
    """When the next active case expires, to sleep until then."""
    query = Case.filter(state=CaseState.ACTIVE, expires_at__not_isnull=True)
    if guild_ids is not None:
        query = query.filter(guild_id__in=list(guild_ids))
    row = await query.order_by("expires_at").first().values_list("expires_at", flat=True)
    return row


async def expire(case_id: int, note: str = "expired") -> bool:
    """Mark an active case expired; False if something else already ended it."""
    async with in_transaction():
        case = await Case.filter(id=case_id, state=CaseState.ACTIVE).select_for_update().first()
        if case is None:
            return False
        await _set_state(case, CaseState.EXPIRED, None, note)
    return True


async def record_dm(case: Case, delivered: bool) -> None:
    """Record whether the member received the DM telling them of the case."""
    await Case.filter(id=case.id).update(dm_delivered=delivered)
    case.dm_delivered = delivered


async def _locked_case(guild_id: int, number: int) -> Case:
    """The case, locked until the transaction ends; CaseNotFound if there is none."""
    await get_case(guild_id, number)
    case = await Case.filter(guild_id=guild_id, number=number).select_for_update().first()
    assert case is not None
    return case


async def _set_state(case: Case, state: CaseState, editor_id: int | None, note: str) -> None:
    await CaseEdit.create(
        case_id=case.id,
        editor_id=editor_id,
        field="state",
        old_value=case.state.value,
        new_value=state.value,
        note=note,
    )
    await Case.filter(id=case.id).update(state=state)
    case.state = state
