"""The case authorization rule (app/domain/authority.py), row by row of its table."""

from __future__ import annotations

import pytest

from app.domain.authority import Actor, CaseOperation, check_case_access
from app.domain.errors import NotPermitted
from app.domain.types import CaseAction

OWNER, MOD, PEER, ADMIN, MEMBER, GONE = 1, 2, 3, 4, 5, 6
ALL = frozenset({"moderate_members", "ban_members", "kick_members", "manage_guild"})
TOPS = {OWNER: 10, ADMIN: 10, MOD: 5, PEER: 5, MEMBER: 1, GONE: None}
ACTORS = {
    "owner": Actor(OWNER, 10, ALL),
    "admin": Actor(ADMIN, 10, ALL),
    "mod": Actor(MOD, 5, frozenset({"moderate_members", "ban_members", "kick_members"})),
    "trial": Actor(MOD, 5, frozenset({"moderate_members"})),
    "member": Actor(MEMBER, 1, frozenset()),
}
E, P, V, X = CaseOperation.EDIT, CaseOperation.PARDON, CaseOperation.VIEW, CaseOperation.EXPORT
W, B, K, F = CaseAction.WARN, CaseAction.BAN, CaseAction.KICK, CaseAction.FINE

# (actor, operation, target, action, refusal or None)
ROWS = [
    # nobody acts on cases about themselves, the owner included, and not even to read them
    ("mod", E, MOD, W, "about yourself"),
    ("mod", P, MOD, W, "about yourself"),
    ("mod", V, MOD, W, "about yourself"),
    ("mod", X, MOD, None, "about yourself"),
    ("owner", P, OWNER, W, "about yourself"),
    # changes: not about a peer, anyone higher, or the owner ...
    ("mod", E, PEER, W, "at or above yours"),
    ("mod", P, ADMIN, W, "at or above yours"),
    ("admin", P, OWNER, W, "server owner"),
    ("admin", E, PEER, W, None),
    # ... except for the owner
    ("owner", P, ADMIN, B, None),
    ("owner", E, PEER, W, None),
    # reading: any staff member, about anyone but themselves
    ("mod", V, ADMIN, B, None),
    ("mod", V, OWNER, W, None),
    ("mod", X, PEER, None, None),
    ("trial", V, MEMBER, B, None),
    # the action's own permission for changes; Moderate Members to read
    ("trial", P, MEMBER, B, "Ban Members"),
    ("trial", E, GONE, B, "Ban Members"),
    ("mod", P, MEMBER, F, "Manage Server"),
    ("trial", P, MEMBER, K, "Kick Members"),
    ("trial", E, MEMBER, W, None),
    ("mod", P, MEMBER, B, None),
    ("mod", P, GONE, B, None),  # not in the server: no hierarchy to compare
    ("member", V, MOD, W, "Moderate Members"),
    ("member", P, MOD, W, "Moderate Members"),
]


@pytest.mark.parametrize(("who", "operation", "target", "action", "refusal"), ROWS)
def test_case_access(
    who: str,
    operation: CaseOperation,
    target: int,
    action: CaseAction | None,
    refusal: str | None,
) -> None:
    def check() -> None:
        check_case_access(operation, ACTORS[who], OWNER, target, TOPS[target], action)

    if refusal is None:
        check()
    else:
        with pytest.raises(NotPermitted, match=refusal):
            check()
