"""Who may read, export, edit and pardon which case: the authorization matrix, slash and prefix.

Each row opens a fresh case about `target` and has `actor` try every operation on it; a refused
operation writes nothing. The rules are app/domain/authority.py's (docs/moderation.md).
"""

from __future__ import annotations

import pytest

from app.db.models import Case
from app.domain.types import CaseAction, CaseState
from sandbox import MessageView
from tests.bot.harness import Harness, is_error

FORMS = ["slash", "prefix"]
OPERATIONS = ("view", "export", "edit", "pardon")
SELF, HIGHER, BAN_PERM, STAFF = "about yourself", "at or above yours", "Ban Members", "Moderate"
OK = None
# actor, target, the case's action, then the refusal expected for view, export, edit, pardon
MATRIX = [
    ("mod", "mod", CaseAction.WARN, (SELF, SELF, SELF, SELF)),
    ("mod", "mod2", CaseAction.WARN, (OK, OK, HIGHER, HIGHER)),  # a peer
    ("mod", "admin", CaseAction.NOTE, (OK, OK, HIGHER, HIGHER)),
    ("mod", "owner", CaseAction.NOTE, (OK, OK, "server owner", "server owner")),
    ("mod", "m1", CaseAction.WARN, (OK, OK, OK, OK)),
    ("admin", "mod", CaseAction.WARN, (OK, OK, OK, OK)),
    ("owner", "admin", CaseAction.WARN, (OK, OK, OK, OK)),  # the owner is above every role
    ("owner", "owner", CaseAction.NOTE, (SELF, SELF, SELF, SELF)),
    ("trial", "outsider", CaseAction.BAN, (OK, OK, BAN_PERM, BAN_PERM)),  # lacks Ban Members
    ("mod", "outsider", CaseAction.BAN, (OK, OK, OK, OK)),  # not in the server: no hierarchy
    ("helper", "trial", CaseAction.WARN, (OK, OK, HIGHER, HIGHER)),  # Administrator, ranked lower
    ("m1", "m2", CaseAction.WARN, (STAFF, STAFF, STAFF, STAFF)),  # no permission at all
]


async def outsider(h: Harness) -> int:
    """A user who was in the server once and left (bans by id target such users)."""
    if "outsider" not in {u.username for u in h.driver.world.users.values()}:
        gone = await h.driver.add_member(h.guild, "outsider")
        await h.driver.remove_member(h.guild, gone)
    return h.id_of("outsider")


async def attempt(
    h: Harness, form: str, actor: str, operation: str, number: int, target: str
) -> MessageView:
    """`actor` tries `operation` on case `number` (about `target`)."""
    if operation == "view":
        return await h.run(form, actor, "case", str(number), number=number)
    if operation == "export":
        who = h.id_of(target)
        return await h.run(form, actor, "modlog-export", str(who), member=who)
    if operation == "edit":
        text = f"reason by {actor}"
        return await h.run(
            form, actor, "reason", f"{number} {text}", number=number, new_reason=text
        )
    return await h.run(
        form, actor, "pardon", f"{number} forgiven", number=number, reason="forgiven"
    )


@pytest.mark.parametrize("form", FORMS)
async def test_case_operations_follow_the_rules_of_acting_on_the_member(
    h: Harness, form: str
) -> None:
    await outsider(h)
    moderation = h.bot.services.moderation
    for actor, target, action, refusals in MATRIX:
        opener = "owner" if target != "owner" else "admin"
        case = await moderation.open_case(
            h.guild.id,
            action,
            h.id_of(target),
            h.id_of(opener),
            "the first reason",
            done_in_discord=True,  # recorded as done by hand: no Discord work in this test
        )
        for operation, refusal in zip(OPERATIONS, refusals, strict=True):
            reply = await attempt(h, form, actor, operation, case.number, target)
            where = f"{actor} {operation} case #{case.number} about {target} ({form})"
            if refusal is None:
                assert not is_error(reply), f"{where}: {reply.content}"
            else:
                assert is_error(reply) and refusal in reply.content, f"{where}: {reply.content}"
        row = await Case.get(guild_id=h.guild.id, number=case.number)
        edited, pardoned = refusals[2] is None, refusals[3] is None
        assert (row.reason == "the first reason") is not edited, where
        assert (row.state == CaseState.PARDONED) is pardoned, where


async def test_an_export_leaves_out_the_readers_own_cases(h: Harness) -> None:
    moderation = h.bot.services.moderation
    for target in ("mod", "m3", "m4"):
        await moderation.open_case(
            h.guild.id, CaseAction.NOTE, h.id_of(target), h.id_of("admin"), "x"
        )
    reply = await h.slash("mod", "modlog-export")
    assert reply.content == "2 case(s) of this server."
    everything = await h.slash("admin", "modlog-export")
    assert everything.content == "3 case(s) of this server."
