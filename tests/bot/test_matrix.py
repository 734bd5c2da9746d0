"""Who may moderate whom: every moderation command over callers x targets.

Callers: a plain member, a moderator, an admin (Administrator, above Moderator) and the owner.
Targets: a plain member, a moderator, the owner, the bot, and the caller. The bot's role sits
just below Moderator, so only plain members can be acted on, and only by staff.
"""

from __future__ import annotations

import pytest

from tests.bot.harness import Harness, cases, is_error, snapshot

CALLERS = {"member": "m1", "moderator": "mod", "admin": "admin", "owner": "owner"}
TARGETS = ["member", "moderator", "owner", "bot", "self"]
COMMANDS = {
    "warn": ("member", {"reason": "matrix"}, "matrix"),
    "note": ("member", {"text": "matrix"}, "matrix"),
    "timeout": ("member", {"duration": "1h", "reason": "matrix"}, "1h matrix"),
    "kick": ("member", {"reason": "matrix"}, "matrix"),
    "ban": ("user", {"reason": "matrix"}, "matrix"),
}
ACTION_ROUTES = [
    ("PUT", "/guilds/{guild_id}/bans/{user_id}"),
    ("DELETE", "/guilds/{guild_id}/members/{user_id}"),
    ("PATCH", "/guilds/{guild_id}/members/{user_id}"),
]


def expected_refusal(caller: str, target: str) -> str | None:
    """The text of the refusal, or None when the action is allowed."""
    if caller == "member":
        return "You need the"
    if target == "self" or (caller == "owner" and target == "owner"):
        return "yourself"
    if target == "bot":
        return "myself"
    if target == "owner":
        return "server owner"
    if target == "moderator":
        return "at or above yours" if caller == "moderator" else "at or above mine"
    return None


def actions_taken(h: Harness) -> int:
    return sum(h.calls(method, route) for method, route in ACTION_ROUTES)


@pytest.mark.parametrize("form", ["slash", "prefix"])
@pytest.mark.parametrize("command", list(COMMANDS))
async def test_permission_matrix(h: Harness, command: str, form: str) -> None:
    option, extra, words = COMMANDS[command]
    opened = 0
    for role, caller in CALLERS.items():
        for target in TARGETS:
            refusal = expected_refusal(role, target)
            if target == "member":
                name = f"t-{command}-{form}-{role}"
                await h.driver.add_member(h.guild, name, roles=["Member"])
            else:
                name = {
                    "moderator": "mod2",
                    "owner": "owner",
                    "self": caller,
                    "bot": h.bot.user.name,
                }[target]
            before, acted, dms = await snapshot(), actions_taken(h), len(h.driver.dms(name))
            # a prefix note is taken only where non-staff cannot read (the member cannot post there)
            private = command == "note" and form == "prefix" and role != "member"
            reply = await h.run(
                form,
                caller,
                command,
                f"{h.mention(name)} {words}",
                at="modlog" if private else "general",
                **{option: name},
                **extra,
            )
            cell = (role, target, reply.content)
            if refusal is None:
                opened += 1
                assert reply.content.startswith(f"Case #{opened}: "), cell
                assert (await cases(h.guild.id))[-1].target_id == h.id_of(name), cell
            else:
                assert is_error(reply) and refusal in reply.content, cell
                assert await snapshot() == before, cell
                assert actions_taken(h) == acted and len(h.driver.dms(name)) == dms, cell
    assert opened == 3
