"""Who may act on a case: the same rules as acting on its member, decided from plain facts.

| operation           | permission needed       | about yourself | at or above your top role |
|---------------------|-------------------------|----------------|---------------------------|
| edit the reason     | the action's permission | never          | only the guild owner      |
| pardon              | the action's permission | never          | only the guild owner      |
| view (case, modlog) | Moderate Members        | never          | yes                       |
| export              | Moderate Members        | never (left out) | yes                     |

The action's permission: timeouts, warnings and notes need Moderate Members; bans, tempbans and
unbans Ban Members; kicks Kick Members; fines Manage Server. Administrator holds every
permission (the bot passes Discord's computed permissions). The guild owner is above every
role, and nobody but the owner ranks above the owner. The bot supplies the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.errors import NotPermitted
from app.domain.types import CaseAction

MODERATE, BAN, KICK, MANAGE = "moderate_members", "ban_members", "kick_members", "manage_guild"
#: The permission each kind of case needs, as Discord names it.
PERMISSION_FOR = {
    CaseAction.WARN: MODERATE,
    CaseAction.NOTE: MODERATE,
    CaseAction.TIMEOUT: MODERATE,
    CaseAction.UNTIMEOUT: MODERATE,
    CaseAction.KICK: KICK,
    CaseAction.BAN: BAN,
    CaseAction.TEMPBAN: BAN,
    CaseAction.UNBAN: BAN,
    CaseAction.FINE: MANAGE,
}
NAMES = {
    MODERATE: "Moderate Members",
    BAN: "Ban Members",
    KICK: "Kick Members",
    MANAGE: "Manage Server",
}


class CaseOperation(StrEnum):
    """What someone wants to do with a case (or with a member's cases)."""

    VIEW = "view"
    EXPORT = "export"
    EDIT = "edit"
    PARDON = "pardon"


CHANGES = frozenset({CaseOperation.EDIT, CaseOperation.PARDON})
VERBS = {
    CaseOperation.VIEW: "read",
    CaseOperation.EXPORT: "export",
    CaseOperation.EDIT: "edit",
    CaseOperation.PARDON: "pardon",
}


@dataclass(frozen=True, slots=True)
class Actor:
    """The person asking: their id, their top role's position and their permissions."""

    user_id: int
    top_position: int
    permissions: frozenset[str]


def check_case_access(
    operation: CaseOperation,
    actor: Actor,
    owner_id: int,
    target_id: int,
    target_top: int | None,
    action: CaseAction | None = None,
) -> None:
    """Raise NotPermitted unless `actor` may do `operation` on a case about `target_id`.

    `target_top` is the target's top-role position, None when they are not in the server
    (then only the owner rule and the self rule apply); `action` is the case's kind (None for
    a member's whole log, which needs Moderate Members).
    """
    verb = VERBS[operation]
    if actor.user_id == target_id:
        raise NotPermitted(f"You cannot {verb} cases about yourself.")
    needed = PERMISSION_FOR[action] if operation in CHANGES and action else MODERATE
    if needed not in actor.permissions:
        raise NotPermitted(f"You need the {NAMES[needed]} permission to {verb} this case.")
    if operation not in CHANGES or actor.user_id == owner_id:
        return
    if target_id == owner_id:
        raise NotPermitted(f"Nobody can {verb} cases about the server owner.")
    if target_top is not None and target_top >= actor.top_position:
        raise NotPermitted(
            f"You cannot {verb} cases about a member whose top role is at or above yours."
        )
