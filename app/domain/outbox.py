"""The outbox of Discord work that cases need: actions, DMs, lifting effects, expiries.

A case is its own outbox row: its action, its DM and the lifting of its effect each have a
state, and `pending` is set while any is pending. Work is claimed one case at a time
(`SELECT ... FOR UPDATE SKIP LOCKED`, a lease in `next_attempt_at`, an attempt counter), so
whichever process serves the guild completes what a crashed process left, and two never work
on one case at once. Discord actions are idempotent (a ban or unban repeated changes nothing)
and are decided from the effect rows when they run, so a late action never undoes a newer
decision; a DM goes from pending to sending before it is sent and is never sent again after
that, so a member gets it at most once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from tortoise.expressions import Q

from app.db.models import Case, Effect
from app.db.retry import retrying, transaction
from app.domain import effects
from app.domain.effects import SELF_ENDING, LiveEffect
from app.domain.moderation import case_view
from app.domain.types import ActionState, CaseState, CaseView, DmState, EffectKind

#: After this many claims a case's remaining work is marked failed.
MAX_ATTEMPTS = 8
BATCH = 50


class Outbox:
    """Claiming and settling the Discord work of cases."""

    async def claim(
        self, guild_ids: Iterable[int], now: datetime, lease: timedelta, limit: int = BATCH
    ) -> list[CaseView]:
        """Claim up to `limit` cases of these guilds with work due, oldest first.

        Each claim holds for `lease`: another claimer skips the case until then. A case
        claimed MAX_ATTEMPTS times already has its remaining work marked failed instead.
        """
        ids = list(guild_ids)
        if not ids:
            return []

        async def attempt() -> tuple[list[Case], list[Case]]:
            async with transaction():
                rows = (
                    await Case.filter(pending=True, guild_id__in=ids)
                    .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                    .order_by("id")
                    .limit(limit)
                    .select_for_update(skip_locked=True)
                )
                for row in rows:
                    await _take(row, now, lease)
                return [r for r in rows if r.attempts <= MAX_ATTEMPTS], [
                    r for r in rows if r.attempts > MAX_ATTEMPTS
                ]

        claimed, exhausted = await retrying(attempt)
        for row in exhausted:
            await self._give_up(row)
        return [case_view(c) for c in claimed]

    async def _give_up(self, row: Case) -> None:
        """Too many attempts: what is still pending is marked failed, the claim ended."""
        failed = ActionState.FAILED
        await self.settle(
            row.guild_id,
            row.number,
            dm=DmState.UNDELIVERED,
            action=failed if row.action_state == ActionState.PENDING else None,
            lift=failed if row.lift_state == ActionState.PENDING else None,
            note=f"gave up after {MAX_ATTEMPTS} attempts",
        )
        await self.release(row.guild_id, row.number)

    async def claim_case(
        self, guild_id: int, number: int, now: datetime, lease: timedelta
    ) -> CaseView | None:
        """Claim one case's pending work; None when it has none or another holds it."""

        async def attempt() -> Case | None:
            async with transaction():
                row = (
                    await Case.filter(guild_id=guild_id, number=number, pending=True)
                    .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                    .select_for_update(skip_locked=True)
                    .first()
                )
                if row is not None:
                    await _take(row, now, lease)
                return row

        row = await retrying(attempt)
        return case_view(row) if row is not None else None

    async def start_dm(self, guild_id: int, number: int) -> bool:
        """Mark the case's DM as being sent; False if it is not pending (never send then)."""
        changed = await Case.filter(
            guild_id=guild_id, number=number, dm_state=DmState.PENDING
        ).update(dm_state=DmState.SENDING)
        return changed == 1

    async def settle(
        self,
        guild_id: int,
        number: int,
        *,
        dm: DmState | None = None,
        action: ActionState | None = None,
        lift: ActionState | None = None,
        note: str = "",
    ) -> CaseView:
        """Record how a piece of the case's work went (only a pending piece changes).

        A failed action closes the case (expired, with Discord's reason) and ends the effect
        it held, since Discord never applied it; an applied kick or ban ends the member's
        timeout, since they left the server.
        """
        found = await _find(guild_id, number)
        kind = effects.EFFECT_OF.get(found.action) if action == ActionState.FAILED else None
        if action == ActionState.APPLIED and found.action in effects.REMOVES_MEMBER:
            kind = EffectKind.TIMEOUT

        async def attempt() -> Case:
            async with transaction():
                if kind is not None:  # the effect row before the case, as every writer does
                    await effects.effect_row(guild_id, found.target_id, kind)
                case = await _locked(guild_id, number)
                first = case.action_state == ActionState.PENDING
                if action == ActionState.FAILED and first:
                    held = await effects.held_by(case)
                    if held is not None:
                        await effects.release(held)
                    await effects.set_state(
                        case, CaseState.EXPIRED, None, f"Discord refused the action: {note}"
                    )
                if action == ActionState.APPLIED and first and kind == EffectKind.TIMEOUT:
                    await effects.member_left(case)
                if dm is not None and case.dm_state in (DmState.PENDING, DmState.SENDING):
                    case.dm_state = dm
                if action is not None and case.action_state == ActionState.PENDING:
                    case.action_state, case.action_note = action, note[:1024]
                if lift is not None and case.lift_state == ActionState.PENDING:
                    case.lift_state = lift
                    if note and lift != ActionState.APPLIED:
                        case.action_note = note[:1024]
                case.pending = effects.still_pending(case)
                await case.save(
                    update_fields=[
                        "dm_state",
                        "action_state",
                        "action_note",
                        "lift_state",
                        "pending",
                    ]
                )
                return case

        return case_view(await retrying(attempt))

    async def release(
        self, guild_id: int, number: int, retry_at: datetime | None = None
    ) -> CaseView:
        """End the claim: work still pending may be claimed again (not before `retry_at`)."""
        case = await _find(guild_id, number)
        if case.pending:
            await Case.filter(id=case.id).update(next_attempt_at=retry_at)
        else:
            await Case.filter(id=case.id).update(next_attempt_at=None)
        return case_view(await _find(guild_id, number))

    async def expire_due(
        self, now: datetime, guild_ids: Iterable[int], limit: int = BATCH
    ) -> list[CaseView]:
        """End the effects of these guilds whose time is up; their cases, now expired.

        A tempban's end is recorded with its unban pending; Discord ends a timeout itself.
        """
        ids = list(guild_ids)
        if not ids:
            return []
        rows = (
            await Effect.filter(guild_id__in=ids, case_id__not_isnull=True, until__lte=now)
            .order_by("until")
            .limit(limit)
        )
        ended = []
        for row in rows:
            case = await self._expire(row.id, now)
            if case is not None:
                ended.append(case_view(case))
        return ended

    async def _expire(self, effect_id: int, now: datetime) -> Case | None:
        async def attempt() -> Case | None:
            async with transaction():
                row = await Effect.filter(id=effect_id).select_for_update().first()
                if row is None or row.case_id is None or row.until is None or row.until > now:
                    return None  # another process ended it, or a newer case holds it
                case = await Case.filter(id=row.case_id).select_for_update().first()
                assert case is not None
                await effects.release(row)
                await effects.set_state(case, CaseState.EXPIRED, None, "expired")
                if row.kind not in SELF_ENDING:
                    case.lift_state, case.pending, case.attempts = ActionState.PENDING, True, 0
                    await case.save(update_fields=["lift_state", "pending", "attempts"])
                return case

        return await retrying(attempt)

    async def next_due(self, guild_ids: Iterable[int]) -> datetime | None:
        """When something next falls due in these guilds: an effect's end or a retry."""
        ids = list(guild_ids)
        if not ids:
            return None
        ends = (
            await Effect.filter(guild_id__in=ids, case_id__not_isnull=True, until__not_isnull=True)
            .order_by("until")
            .first()
            .values_list("until", flat=True)
        )
        retry = (
            await Case.filter(guild_id__in=ids, pending=True, next_attempt_at__not_isnull=True)
            .order_by("next_attempt_at")
            .first()
            .values_list("next_attempt_at", flat=True)
        )
        found: tuple[object, ...] = (ends, retry)
        times = [t for t in found if isinstance(t, datetime)]
        return min(times) if times else None

    async def has_unclaimed(self, guild_ids: Iterable[int], now: datetime) -> bool:
        """Whether some case of these guilds has work nobody holds a claim on."""
        return await (
            Case.filter(pending=True, guild_id__in=list(guild_ids))
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .exists()
        )

    async def live(self, guild_id: int, target_id: int, kind: EffectKind) -> LiveEffect | None:
        """The case holding the member's effect of `kind`, if any."""
        return await effects.live(guild_id, target_id, kind)

    async def pending(self, guild_id: int | None = None) -> list[CaseView]:
        """Cases with Discord work left (of one guild, or all), oldest first."""
        query = Case.filter(pending=True)
        if guild_id is not None:
            query = query.filter(guild_id=guild_id)
        return [case_view(c) for c in await query.order_by("id")]


async def _take(row: Case, now: datetime, lease: timedelta) -> None:
    """Claim a locked case: count the attempt, hold it for `lease`.

    A DM a previous claimer was sending when it stopped is never sent again.
    """
    row.attempts += 1
    row.next_attempt_at = now + lease
    if row.dm_state == DmState.SENDING:
        row.dm_state = DmState.UNKNOWN
    await row.save(update_fields=["attempts", "next_attempt_at", "dm_state"])


async def _find(guild_id: int, number: int) -> Case:
    case = await Case.get_or_none(guild_id=guild_id, number=number)
    assert case is not None, f"case {guild_id}#{number}"
    return case


async def _locked(guild_id: int, number: int) -> Case:
    case = await Case.filter(guild_id=guild_id, number=number).select_for_update().first()
    assert case is not None, f"case {guild_id}#{number}"
    return case
