"""How cases look: one-line summaries, full case embeds, the member's DM and the reply."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import discord

from app.bot.durations import format_duration
from app.bot.render import (
    COLOUR_INFO,
    COLOUR_OK,
    COLOUR_SEVERE,
    COLOUR_WARN,
    Field,
    make_embed,
    mention,
    one_line,
    timestamp,
)
from app.domain.types import ActionState, CaseAction, CaseEditView, CaseState, CaseView

LABELS = {
    CaseAction.WARN: "Warning",
    CaseAction.NOTE: "Note",
    CaseAction.TIMEOUT: "Timeout",
    CaseAction.UNTIMEOUT: "Timeout lifted",
    CaseAction.KICK: "Kick",
    CaseAction.BAN: "Ban",
    CaseAction.TEMPBAN: "Temporary ban",
    CaseAction.UNBAN: "Unban",
    CaseAction.FINE: "Fine",
}
COLOURS = {
    CaseAction.WARN: COLOUR_WARN,
    CaseAction.NOTE: COLOUR_INFO,
    CaseAction.TIMEOUT: COLOUR_WARN,
    CaseAction.UNTIMEOUT: COLOUR_OK,
    CaseAction.KICK: COLOUR_SEVERE,
    CaseAction.BAN: COLOUR_SEVERE,
    CaseAction.TEMPBAN: COLOUR_SEVERE,
    CaseAction.UNBAN: COLOUR_OK,
    CaseAction.FINE: COLOUR_WARN,
}
DM_STATUS = {True: "delivered", False: "not delivered (DMs closed)", None: "not sent"}


def label(case: CaseView) -> str:
    """The case's kind as shown: "Temporary ban (7d)", "Warning", ..."""
    text = LABELS[case.action]
    if case.duration_s is not None:
        text += f" ({format_duration(timedelta(seconds=case.duration_s))})"
    return text


def case_line(case: CaseView) -> str:
    """One line of a modlog page (under 300 characters)."""
    state = "" if case.state == CaseState.ACTIVE else f" · {case.state.value}"
    reason = one_line(case.reason or "no reason given", 120)
    return (
        f"`#{case.number}` **{label(case)}** {mention(case.target_id)} "
        f"by {mention(case.moderator_id)} · {timestamp(case.created_at, 'd')}{state}\n"
        f"↳ {reason}"
    )


def case_embed(
    case: CaseView, edits: Sequence[CaseEditView] = (), title: str | None = None
) -> discord.Embed:
    """A full case: who, by whom, why, state, expiry, DM delivery and its edit history."""
    fields = [
        Field("Member", f"{mention(case.target_id)} (`{case.target_id}`)"),
        Field("Moderator", f"{mention(case.moderator_id)} (`{case.moderator_id}`)"),
        Field("State", case.state.value),
        Field("Opened", timestamp(case.created_at)),
    ]
    if case.expires_at is not None:
        ends = f"{timestamp(case.expires_at)} ({timestamp(case.expires_at, 'R')})"
        fields.append(Field("Ends", ends))
    fields.append(Field("DM", DM_STATUS[case.dm_delivered]))
    if case.action_state != ActionState.NONE or case.lift_state != ActionState.NONE:
        fields.append(Field("In Discord", discord_status(case)))
    if edits:
        lines = [
            f"{timestamp(e.created_at, 'd')} {e.field}: {one_line(e.old_value, 60)} → "
            f"{one_line(e.new_value, 60)}"
            + (f" ({one_line(e.note, 80)})" if e.note else "")
            + (f" by {mention(e.editor_id)}" if e.editor_id else "")
            for e in edits[-8:]
        ]
        fields.append(Field("History", "\n".join(lines), inline=False))
    return make_embed(
        title or f"Case #{case.number} — {label(case)}",
        case.reason or "No reason given.",
        fields=fields,
        colour=COLOURS[case.action],
    )


def discord_status(case: CaseView) -> str:
    """Where the case's Discord action (and the lifting of its effect) stands."""
    text = case.action_state.value
    if case.lift_state != ActionState.NONE:
        text += f"; lifting: {case.lift_state.value}"
    if case.action_note:
        text += f" ({one_line(case.action_note, 200)})"
    return text


def dm_embed(guild_name: str, case: CaseView) -> discord.Embed:
    """What the member is told."""
    fields = [Field("Case", f"#{case.number}")]
    if case.expires_at is not None:
        fields.append(Field("Ends", timestamp(case.expires_at, "R")))
    return make_embed(
        f"{label(case)} in {guild_name}",
        case.reason or "No reason given.",
        fields=fields,
        colour=COLOURS[case.action],
    )


def reply_text(case: CaseView, target_id: int, extra: str = "") -> str:
    """The moderator's confirmation; the same text for a replayed request."""
    text = f"Case #{case.number}: {label(case)}{extra} for {mention(target_id)}."
    if case.expires_at is not None:
        text += f" Ends {timestamp(case.expires_at, 'R')}."
    if case.dm_delivered is True:
        text += " They were told by DM."
    elif case.dm_delivered is False:
        text += " Their DMs are closed, so they were not told."
    return text
