"""Moderation cases: numbered per guild, searchable, editable with an audit trail.

A case number comes from the guild's counter row, incremented in the same transaction that
inserts the case, so numbers run 1, 2, 3 ... with no gap and no duplicate even when many
processes open cases at once (the counter's row lock serialises them; a rollback returns the
number). Reason and state changes are appended to case_edits, never overwritten silently.

A case that changes Discord is recorded with its action pending in the same transaction that
moves the member's effects (app/domain/effects.py); the bot then does the Discord work through
the outbox (app/domain/outbox.py) and records how it went.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.db.models import Case, CaseEdit, GuildSettings
from app.db.retry import retrying, transaction
from app.domain import effects, validation
from app.domain.effects import DISCORD_ACTIONS, EFFECT_OF, ENDS, REMOVES_MEMBER, LiveEffect
from app.domain.errors import (
    CaseNotFound,
    CaseStateError,
    InvalidDuration,
    InvalidInput,
    SelfTarget,
)
from app.domain.guilds import ensure_row
from app.domain.idempotency import check_same
from app.domain.types import (
    ActionState,
    CaseAction,
    CaseEditView,
    CaseState,
    CaseView,
    DmState,
    EffectKind,
    view_of,
)

TIMEOUT_MAX = timedelta(days=28)
TEMPBAN_MAX = timedelta(days=3650)
PAGE_MAX = 50

REASON_REQUIRED = frozenset({CaseAction.WARN, CaseAction.NOTE, CaseAction.FINE})
DURATION_REQUIRED = {CaseAction.TIMEOUT: TIMEOUT_MAX, CaseAction.TEMPBAN: TEMPBAN_MAX}
DELETE_MESSAGES_MAX = 7 * 86_400


@dataclass(frozen=True, slots=True)
class CasePage:
    """Cases newest first, and the cursor for the next (older) page, if any."""

    cases: list[CaseView]
    next_before: int | None


def case_view(case: Case, replayed: bool = False) -> CaseView:
    """The frozen view of a case row."""
    return view_of(CaseView, case, replayed=replayed)


def edit_view(edit: CaseEdit) -> CaseEditView:
    """The frozen view of a case edit row."""
    return view_of(CaseEditView, edit)


class Moderation:
    """The case log of every guild."""

    async def open_case(
        self,
        guild_id: int,
        action: CaseAction | str,
        target_id: int,
        moderator_id: int,
        reason: str | None = "",
        duration: timedelta | None = None,
        *,
        key: str | None = None,
        now: datetime | None = None,
        notify: bool = False,
        done_in_discord: bool = False,
        delete_message_s: int = 0,
        claim_for: timedelta | None = None,
    ) -> CaseView:
        """Open a case with the guild's next number and move the member's effects.

        The case's Discord action (if its kind has one) is recorded pending, and so is the DM
        to the member when `notify`; `done_in_discord` records a moderator's own action in
        Discord (an audit-log entry) as applied. `claim_for` hands that work to the caller for
        so long (app/domain/outbox.py), as a claim would. With `key`, a repeat of the same
        request returns the first case with `replayed` set; the key reused for another action
        or member raises IdempotencyConflict.
        """
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
        if not 0 <= delete_message_s <= DELETE_MESSAGES_MAX:
            raise InvalidInput("Messages can be deleted for at most 7 days.")
        if target_id == moderator_id:
            raise SelfTarget("You cannot open a case against yourself.")
        if key is not None and (earlier := await _replay(key, guild_id, action, target_id)):
            return earlier
        await ensure_row(guild_id)
        now = now or datetime.now(UTC)
        state = ActionState.NONE
        if action in DISCORD_ACTIONS:
            state = ActionState.APPLIED if done_in_discord else ActionState.PENDING
        pending = notify or state == ActionState.PENDING
        claimed = pending and claim_for is not None

        async def attempt() -> Case:
            async with transaction():
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
                    dm_state=DmState.PENDING if notify else DmState.NONE,
                    action_state=state,
                    delete_message_s=delete_message_s,
                    pending=pending,
                    attempts=1 if claimed else 0,
                    next_attempt_at=now + claim_for if claimed and claim_for else None,
                )
                if action in ENDS:
                    await effects.end_live(
                        guild_id, target_id, ENDS[action], moderator_id, f"ended by case {number}"
                    )
                if action in EFFECT_OF:
                    await effects.take(case, moderator_id)
                if action in REMOVES_MEMBER and done_in_discord:
                    await effects.member_left(case)
                return case

        try:
            return case_view(await retrying(attempt))
        except IntegrityError:
            if key is not None and (earlier := await _replay(key, guild_id, action, target_id)):
                return earlier
            raise

    async def replay(
        self, key: str, guild_id: int, action: CaseAction, target_id: int
    ) -> CaseView | None:
        """The case a request key already opened (marked `replayed`), or None.

        The key used for another action or member raises IdempotencyConflict.
        """
        return await _replay(key, guild_id, action, target_id)

    async def get_case(self, guild_id: int, number: int) -> CaseView:
        """The case with that number in this guild, or CaseNotFound."""
        return case_view(await _find(guild_id, number))

    async def edits(self, guild_id: int, number: int) -> list[CaseEditView]:
        """Every recorded change of a case, oldest first."""
        case = await _find(guild_id, number)
        return [edit_view(e) for e in await CaseEdit.filter(case_id=case.id).order_by("id")]

    async def history(
        self,
        guild_id: int,
        target_id: int | None = None,
        *,
        action: CaseAction | str | None = None,
        moderator_id: int | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int = 10,
    ) -> CasePage:
        """A guild's cases, newest first, filtered; `before` is the keyset cursor (a number)."""
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
        return CasePage([case_view(r) for r in rows], rows[-1].number if more else None)

    async def export(
        self,
        guild_id: int,
        target_id: int | None = None,
        chunk: int = 1000,
        *,
        leave_out: int | None = None,
    ) -> AsyncIterator[CaseView]:
        """Every case of a guild (or of one member), oldest first, read in keyset chunks.

        `leave_out` omits the cases about that member (the reader's own).
        """
        validation.snowflake(guild_id, "guild")
        last = 0
        while True:
            query = Case.filter(guild_id=guild_id, number__gt=last)
            if target_id is not None:
                query = query.filter(target_id=target_id)
            if leave_out is not None:
                query = query.exclude(target_id=leave_out)
            rows = await query.order_by("number").limit(chunk)
            for row in rows:
                yield case_view(row)
            if len(rows) < chunk:
                return
            last = rows[-1].number

    async def edit_reason(
        self,
        guild_id: int,
        number: int,
        editor_id: int,
        new_reason: str,
        *,
        key: str | None = None,
    ) -> CaseView:
        """Replace a case's reason, recording who changed it and the old text.

        With `key`, a repeat of the request returns the case marked `replayed`.
        """
        validation.snowflake(editor_id, "moderator")
        text = validation.reason(new_reason, required=True)
        if key is not None and (earlier := await _edit_replay(key, guild_id, number, "reason")):
            return earlier
        async with in_transaction():
            case = await _locked_case(guild_id, number)
            if case.reason != text:
                await CaseEdit.create(
                    case_id=case.id,
                    editor_id=editor_id,
                    field="reason",
                    old_value=case.reason,
                    new_value=text,
                    idempotency_key=key,
                )
                case.reason = text
                await case.save(update_fields=["reason"])
        return case_view(case)

    async def pardon(
        self,
        guild_id: int,
        number: int,
        moderator_id: int,
        reason: str,
        *,
        key: str | None = None,
    ) -> CaseView:
        """Pardon a case (it no longer counts against the member); reason recorded.

        When the case holds its member's ban or timeout, the effect ends and lifting it in
        Discord is recorded pending (`lift_state`); a case that holds nothing (an older ban
        superseded by a newer one) changes nothing in Discord. With `key`, a repeat of the
        request returns the case marked `replayed` instead of "already pardoned".
        """
        validation.snowflake(moderator_id, "moderator")
        text = validation.reason(reason, required=True)
        if key is not None and (earlier := await _edit_replay(key, guild_id, number, "state")):
            return earlier
        found = await _find(guild_id, number)
        kind = EFFECT_OF.get(found.action)

        async def attempt() -> Case:
            async with transaction():
                # The effect row before the case: every writer locks in that order.
                if kind is not None:
                    await effects.effect_row(guild_id, found.target_id, kind)
                case = await _locked_case(guild_id, number)
                if case.state == CaseState.PARDONED:
                    raise CaseStateError(f"Case #{number} is already pardoned.")
                held = await effects.held_by(case)
                if held is not None:
                    await effects.release(held)
                    case.lift_state = ActionState.PENDING
                    case.pending = True
                    case.attempts = 0
                    await case.save(update_fields=["lift_state", "pending", "attempts"])
                await effects.set_state(case, CaseState.PARDONED, moderator_id, text, key)
                return case

        return case_view(await retrying(attempt))

    async def live_effect(
        self, guild_id: int, target_id: int, kind: EffectKind
    ) -> LiveEffect | None:
        """The case holding the member's ban (or timeout), if one is live."""
        return await effects.live(guild_id, target_id, kind)


async def _replay(key: str, guild_id: int, action: CaseAction, target_id: int) -> CaseView | None:
    """The case a key opened before, if any (refused when it was for something else)."""
    existing = await retrying(lambda: Case.get_or_none(idempotency_key=key))
    if existing is None:
        return None
    check_same(
        (existing.guild_id, existing.action, existing.target_id),
        (guild_id, action, target_id),
        "case",
    )
    return case_view(existing, replayed=True)


async def _find(guild_id: int, number: int) -> Case:
    """The case row, or CaseNotFound."""
    validation.snowflake(guild_id, "guild")
    validation.case_number(number)
    case = await Case.get_or_none(guild_id=guild_id, number=number)
    if case is None:
        raise CaseNotFound(f"There is no case #{number} in this server.")
    return case


async def _locked_case(guild_id: int, number: int) -> Case:
    """The case, locked until the transaction ends; CaseNotFound if there is none."""
    await _find(guild_id, number)
    case = await Case.filter(guild_id=guild_id, number=number).select_for_update().first()
    assert case is not None
    return case


async def _edit_replay(key: str, guild_id: int, number: int, field: str) -> CaseView | None:
    """The case a key changed before (refused when it changed another case or field)."""
    edit = await CaseEdit.get_or_none(idempotency_key=key).prefetch_related("case")
    if edit is None:
        return None
    check_same(
        (edit.case.guild_id, edit.case.number, edit.field), (guild_id, number, field), "change"
    )
    return case_view(await Case.get(id=edit.case_id), replayed=True)
