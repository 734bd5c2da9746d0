"""The effect model and the outbox end to end: what the issue reproduced, now consistent."""

from __future__ import annotations

from app.db.models import Case
from app.domain.types import ActionState, CaseAction, CaseState, DmState, EffectKind
from tests.bot.harness import Harness, cases, is_error
from testsupport.waiting import wait_for

BAN = "PUT /guilds/{guild_id}/bans/{user_id}"


def banned(h: Harness, name: str) -> bool:
    return h.id_of(name) in h.driver.guild(h.guild).bans


async def rejoin(h: Harness, name: str) -> None:
    h.driver.guild(h.guild).bans.pop(h.id_of(name), None)
    if h.id_of(name) not in h.driver.guild(h.guild).members:
        await h.driver.add_member(h.guild, name, roles=["Member"])


async def test_pardoning_an_old_ban_does_not_lift_the_newer_one(h: Harness) -> None:
    await h.slash("mod", "ban", user="m1", reason="raid")
    await h.slash("mod", "unban", user="m1", reason="appeal")
    await h.slash("mod", "ban", user="m1", reason="raid again")
    reply = await h.slash("mod", "pardon", number=1, reason="old news")
    assert reply.content == f"Case #1 ({h.mention('m1')}) pardoned."
    assert banned(h, "m1")
    first, unban, third = await cases(h.guild.id)
    assert (first.state, unban.state, third.state) == (
        CaseState.PARDONED,
        CaseState.ACTIVE,
        CaseState.ACTIVE,
    )
    live = await h.bot.services.moderation.live_effect(h.guild.id, h.id_of("m1"), EffectKind.BAN)
    assert live is not None and live.number == 3
    # An old permanent ban pardoned during a tempban leaves the tempban too.
    await h.slash("mod", "ban", user="m1", duration="1d", reason="tempban")
    await h.slash("mod", "pardon", number=3, reason="superseded anyway")
    assert banned(h, "m1")
    lifted = await h.slash("mod", "pardon", number=4, reason="done")
    assert lifted.content.endswith("pardoned. The ban was lifted.") and not banned(h, "m1")
    await rejoin(h, "m1")


async def test_discord_down_leaves_the_action_pending_until_the_outbox_applies_it(
    h: Harness,
) -> None:
    h.server.fail_next(BAN, count=1, status=503)
    handle = await h.driver.slash(h.guild, "general", "mod", "ban", user="m2", reason="raid")
    reply = await handle.wait_response(8)
    assert reply.content.startswith(f"Case #1: Ban for {h.mention('m2')}.")
    assert "Discord has not confirmed it yet" in reply.content and not banned(h, "m2")
    (case,) = await cases(h.guild.id)
    assert (case.action_state, case.state, case.dm_state) == (
        ActionState.PENDING,
        CaseState.ACTIVE,
        DmState.DELIVERED,  # the DM went first and is never sent again
    )
    await h.wait(lambda: banned(h, "m2") or None, "the outbox to retry the ban", within=10)

    async def applied() -> bool:
        return (await Case.get(id=case.id)).action_state == ActionState.APPLIED

    await wait_for(applied)
    # The same interaction delivered again (a RESUME replay) reports the case as it is now.
    h.driver.redeliver(handle)
    again = await handle.wait_followup(1)  # 0 filled the first delivery's deferred reply
    assert again.content.startswith("Case #1: Ban") and "not confirmed" not in again.content
    assert len(await cases(h.guild.id)) == 1 and len(h.driver.dms("m2")) == 1
    await rejoin(h, "m2")


async def test_a_refused_action_closes_its_case_with_the_reason(h: Harness) -> None:
    h.server.fail_next(BAN, count=1, status=403)
    reply = await h.slash("mod", "ban", user="m3", reason="raid")
    assert is_error(reply) and "Discord refused to ban" in reply.content
    (case,) = await cases(h.guild.id)
    assert (case.state, case.action_state) == (CaseState.EXPIRED, ActionState.FAILED)
    assert case.action_note.startswith("403")
    assert (
        await h.bot.services.moderation.live_effect(h.guild.id, h.id_of("m3"), EffectKind.BAN)
        is None
    )
    shown = await h.slash("mod", "case", number=1)
    assert "failed (403" in shown.text()
    await rejoin(h, "m3")


async def test_a_manual_ban_with_an_odd_reason_still_opens_a_case(h: Harness) -> None:
    await h.driver.ban(h.guild, "mod", "m4", reason="spam\x00bot " + "x" * 2000)

    async def opened() -> Case | None:
        return await Case.get_or_none(guild_id=h.guild.id, target_id=h.id_of("m4"))

    case = await wait_for(opened)
    assert case.action == CaseAction.BAN and case.action_state == ActionState.APPLIED
    assert case.reason.startswith("spambot x") and "\x00" not in case.reason
    assert len(case.reason) == 1024
    await h.driver.unban(h.guild, "mod", "m4", reason="\x00")

    async def unbanned() -> bool:
        return await Case.filter(guild_id=h.guild.id, action=CaseAction.UNBAN).exists()

    await wait_for(unbanned)
    assert (await Case.get(id=case.id)).state == CaseState.EXPIRED  # the unban ended it
    await rejoin(h, "m4")
