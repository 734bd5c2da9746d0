"""The effect model: which cases change Discord state, and who holds a member's ban or timeout.

A timeout, ban or tempban case owns an effect of its kind on its member. At most one effect of
a kind is live per member (one `effects` row per guild, member and kind, naming the case that
holds it). A newer case of the same kind supersedes the holder; an unban (untimeout) ends
whichever ban (timeout) is live; a kick or ban, once Discord applied it, ends a live timeout,
since the member is no longer in the server (a ban that never happened leaves it); a pardon or
an expiry ends the effect only when its case is the holder.
Discord is then made to match the rows (app/domain/outbox.py), never the other way round.

These helpers run inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db.models import Case, CaseEdit, Effect
from app.db.retry import retrying
from app.domain.types import ActionState, CaseAction, CaseState, DmState, EffectKind

#: The effect each kind of case takes.
EFFECT_OF = {
    CaseAction.TIMEOUT: EffectKind.TIMEOUT,
    CaseAction.BAN: EffectKind.BAN,
    CaseAction.TEMPBAN: EffectKind.BAN,
}
#: The effect each kind of case ends when it is recorded, whoever holds it.
ENDS = {CaseAction.UNTIMEOUT: EffectKind.TIMEOUT, CaseAction.UNBAN: EffectKind.BAN}
#: Cases that remove the member from the server: applied, they end a live timeout.
REMOVES_MEMBER = frozenset({CaseAction.KICK, CaseAction.BAN, CaseAction.TEMPBAN})
#: Cases whose action is a Discord call (the rest are records only).
DISCORD_ACTIONS = frozenset(
    {
        CaseAction.TIMEOUT,
        CaseAction.UNTIMEOUT,
        CaseAction.KICK,
        CaseAction.BAN,
        CaseAction.TEMPBAN,
        CaseAction.UNBAN,
    }
)
#: Effects Discord ends by itself when their time is up (a tempban's end needs an unban).
SELF_ENDING = frozenset({EffectKind.TIMEOUT})


@dataclass(frozen=True, slots=True)
class LiveEffect:
    """The case holding a member's ban or timeout, and until when (None: no end)."""

    kind: EffectKind
    number: int
    until: datetime | None


async def effect_row(guild_id: int, target_id: int, kind: EffectKind) -> Effect:
    """The member's row for `kind`, created if missing, locked until the transaction ends."""
    row = (
        await Effect.filter(guild_id=guild_id, target_id=target_id, kind=kind)
        .select_for_update()
        .first()
    )
    if row is None:
        await Effect.bulk_create(
            [Effect(guild_id=guild_id, target_id=target_id, kind=kind)], ignore_conflicts=True
        )
        row = (
            await Effect.filter(guild_id=guild_id, target_id=target_id, kind=kind)
            .select_for_update()
            .first()
        )
    assert row is not None
    return row


async def take(case: Case, editor_id: int | None) -> None:
    """`case` becomes the holder of its effect; the previous holder is superseded."""
    kind = EFFECT_OF[case.action]
    row = await effect_row(case.guild_id, case.target_id, kind)
    if row.case_id is not None and row.case_id != case.id:
        old = await Case.get(id=row.case_id)
        await set_state(old, CaseState.EXPIRED, editor_id, f"superseded by case {case.number}")
    row.case_id, row.until = case.id, case.expires_at
    await row.save(update_fields=["case_id", "until", "updated_at"])


async def end_live(
    guild_id: int, target_id: int, kind: EffectKind, editor_id: int | None, note: str
) -> Case | None:
    """End whichever effect of `kind` is live on the member; returns its former holder."""
    row = await effect_row(guild_id, target_id, kind)
    if row.case_id is None:
        return None
    holder = await Case.get(id=row.case_id)
    await release(row)
    await set_state(holder, CaseState.EXPIRED, editor_id, note)
    return holder


async def member_left(case: Case) -> None:
    """`case` removed its member from the server: their timeout (if any) ends with it."""
    await end_live(
        case.guild_id,
        case.target_id,
        EffectKind.TIMEOUT,
        case.moderator_id,
        f"the member left the server with case {case.number}",
    )


async def held_by(case: Case) -> Effect | None:
    """The effect row `case` holds (locked), or None when it holds none."""
    kind = EFFECT_OF.get(case.action)
    if kind is None:
        return None
    row = await effect_row(case.guild_id, case.target_id, kind)
    return row if row.case_id == case.id else None


async def release(row: Effect) -> None:
    """No effect of the row's kind is live any more."""
    row.case_id, row.until = None, None
    await row.save(update_fields=["case_id", "until", "updated_at"])


async def live(guild_id: int, target_id: int, kind: EffectKind) -> LiveEffect | None:
    """The member's live effect of `kind`, if any (read without locking; retried)."""

    async def read() -> LiveEffect | None:
        row = await Effect.get_or_none(guild_id=guild_id, target_id=target_id, kind=kind)
        if row is None or row.case_id is None:
            return None
        case = await Case.get(id=row.case_id).only("id", "number")
        return LiveEffect(kind, case.number, row.until)

    return await retrying(read)


async def set_state(
    case: Case, state: CaseState, editor_id: int | None, note: str, key: str | None = None
) -> None:
    """Change a case's state, appending the change to its history (no-op if unchanged)."""
    if case.state == state:
        return
    await CaseEdit.create(
        case_id=case.id,
        editor_id=editor_id,
        field="state",
        old_value=case.state.value,
        new_value=state.value,
        note=note,
        idempotency_key=key,
    )
    await Case.filter(id=case.id).update(state=state)
    case.state = state


def still_pending(case: Case) -> bool:
    """Whether the case has Discord work left (its `pending` flag)."""
    return case.dm_state == DmState.PENDING or ActionState.PENDING in (
        case.action_state,
        case.lift_state,
    )
