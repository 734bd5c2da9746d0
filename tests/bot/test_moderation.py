"""Moderation commands end to end: cases, DMs, modlog posts, Discord actions and refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import discord
import pytest

from app.bot.privacy import non_staff_reader
from app.db.models import Case, CaseEdit
from app.domain.types import CaseAction, CaseState, DmState
from sandbox import MessageView
from tests.bot.harness import Harness, cases, coins, is_error, snapshot
from testsupport.waiting import wait_for

FORMS = ["slash", "prefix"]
BAN_ROUTE = "/guilds/{guild_id}/bans/{user_id}"


async def modlog_on(h: Harness) -> None:
    channel = h.driver.channel(h.guild, "modlog")
    await h.bot.services.guilds.set_modlog(h.guild.id, channel.id)


def modlog_posts(h: Harness) -> list[MessageView]:
    return h.driver.bot_messages(h.guild, "modlog")


async def rejoin(h: Harness, name: str) -> None:
    guild = h.driver.guild(h.guild)
    guild.bans.pop(h.id_of(name), None)
    if h.id_of(name) not in guild.members:
        await h.driver.add_member(h.guild, name, roles=["Member"])


@pytest.mark.parametrize("form", FORMS)
async def test_warn_opens_case_dms_member_and_posts_to_modlog(h: Harness, form: str) -> None:
    await modlog_on(h)
    target = "m1" if form == "slash" else "m2"
    posted = len(modlog_posts(h))
    reply = await h.against(form, "mod", "warn", target, reason="spamming links")
    assert reply.content == (f"Case #1: Warning for {h.mention(target)}. They were told by DM.")
    dm = await h.driver.wait_dm(target)
    assert "Warning in Guild 0" in dm.text() and "spamming links" in dm.text()
    await h.wait(lambda: True if len(modlog_posts(h)) > posted else None, "a modlog post")
    assert "Case #1 — Warning" in modlog_posts(h)[-1].text()
    (case,) = await cases(h.guild.id)
    assert (case.action, case.target_id, case.moderator_id) == (
        CaseAction.WARN,
        h.id_of(target),
        h.id_of("mod"),
    )
    assert case.reason == "spamming links" and case.dm_state == DmState.DELIVERED
    assert case.idempotency_key is not None and case.idempotency_key.startswith("case:")


async def test_a_modlog_opened_to_members_gets_no_more_cases(h: Harness) -> None:
    await modlog_on(h)
    channel = h.driver.channel(h.guild, "modlog")
    private = list(channel.overwrites)

    async def readable_by(who: str | None) -> None:
        def seen() -> bool | None:
            cached = h.bot.get_channel(channel.id)
            ok = isinstance(cached, discord.TextChannel) and non_staff_reader(cached) == who
            return ok or None

        await wait_for(seen, within=10)

    h.driver.set_overwrites(h.guild, "modlog", [o for o in private if o.id != h.guild.id])
    try:
        await readable_by("everyone")
        posted = len(modlog_posts(h))
        reply = await h.against("slash", "mod", "warn", "m29", reason="SECRET reason")
        assert reply.content.startswith("Case #1: Warning")
        assert len(modlog_posts(h)) == posted  # the post comes before the reply: none came
    finally:
        h.driver.set_overwrites(h.guild, "modlog", private)
    await readable_by(None)
    await h.against("slash", "mod", "warn", "m29", reason="again")
    await h.wait(lambda: True if len(modlog_posts(h)) > posted else None, "a modlog post")
    assert "Case #2" in modlog_posts(h)[-1].text()


async def test_closed_dms_are_recorded_not_an_error(h: Harness) -> None:
    h.driver.set_dms_closed("m3")
    try:
        reply = await h.slash("mod", "warn", member="m3", reason="rude")
    finally:
        h.driver.set_dms_closed("m3", False)
    assert not is_error(reply) and "Their DMs are closed" in reply.content
    assert (await cases(h.guild.id))[0].dm_state == DmState.UNDELIVERED


@pytest.mark.parametrize("form", FORMS)
async def test_note_is_for_moderators_only(h: Harness, form: str) -> None:
    # slash: answered ephemerally anywhere; prefix: only in a channel non-staff cannot read
    target = "m4" if form == "slash" else "m5"
    expected = f"Case #1: Note for {h.mention(target)}."
    if form == "slash":
        reply = await h.slash("mod", "note", member=target, text="watch them")
        assert reply.content == expected and reply.ephemeral
    else:  # the reply is looked for by its text: the modlog post may come first in #modlog
        await h.driver.send_message(h.guild, "modlog", "mod", f"!note {h.mention(target)} hm")
        await h.wait(
            lambda: expected in [m.content for m in modlog_posts(h)] or None,
            "the note's answer in #modlog",
        )
    assert h.driver.dms(target) == []
    assert (await cases(h.guild.id))[0].dm_state == DmState.NONE
    refused = await h.run(form, "mod", "note", h.mention(target), member=target, text=" ")
    assert is_error(refused)
    assert len(await cases(h.guild.id)) == 1


async def test_a_note_is_never_answered_where_members_read(h: Harness) -> None:
    for text in [f"note {h.mention('m6')} SECRET", "reason 1 SECRET", "pardon 1 SECRET"]:
        if text.startswith("reason"):  # a note to correct and pardon
            await h.bot.services.moderation.open_case(
                h.guild.id, CaseAction.NOTE, h.id_of("m6"), h.id_of("mod"), "first"
            )
        before = await snapshot()
        sent = await h.driver.send_message(h.guild, "general", "mod", "!" + text)
        reply = await h.driver.wait_reply(sent)
        assert is_error(reply) and "readable by everyone" in reply.content, reply.content
        assert "I deleted your message" in reply.content and "SECRET" not in reply.content
        assert h.driver.world.messages[sent.id].deleted
        assert await snapshot() == before, text
    edited = await h.slash("mod", "reason", number=1, new_reason="second")
    pardoned = await h.slash("mod", "pardon", number=1, reason="done")
    assert edited.ephemeral and pardoned.ephemeral and not is_error(pardoned), pardoned.content


@pytest.mark.parametrize("form", FORMS)
async def test_timeout_then_untimeout(h: Harness, form: str) -> None:
    target = "m6" if form == "slash" else "m7"
    reply = await h.against(form, "mod", "timeout", target, duration="10m", reason="being rude")
    assert reply.content.startswith(f"Case #1: Timeout (10m) for {h.mention(target)}.")
    assert h.driver.member(h.guild, target).timed_out()
    before = await snapshot()
    for duration, text in [
        ("29d", "at most 28 days"),
        ("soon", "not a duration"),
        ("0s", "must be positive"),
    ]:
        bad = await h.against(form, "mod", "timeout", target, duration=duration, reason="x")
        assert is_error(bad) and text in bad.content, bad.content
    admin = await h.against(form, "mod", "timeout", "helper", duration="1h", reason="x")
    assert is_error(admin) and "Administrator cannot be timed out" in admin.content
    assert await snapshot() == before
    lifted = await h.against(form, "mod", "untimeout", target, reason="calmed down")
    assert lifted.content.startswith(f"Case #2: Timeout lifted for {h.mention(target)}.")
    assert not h.driver.member(h.guild, target).timed_out()
    again = await h.against(form, "mod", "untimeout", target)
    assert is_error(again) and "is not timed out" in again.content
    first, second = await cases(h.guild.id)
    assert first.state == CaseState.EXPIRED and second.action == CaseAction.UNTIMEOUT


@pytest.mark.parametrize("form", FORMS)
async def test_kick_dms_first_then_removes(h: Harness, form: str) -> None:
    target = "m8" if form == "slash" else "m9"
    reply = await h.against(form, "mod", "kick", target, reason="trolling")
    assert reply.content == f"Case #1: Kick for {h.mention(target)}. They were told by DM."
    assert h.id_of(target) not in h.driver.guild(h.guild).members
    assert "Kick in Guild 0" in (await h.driver.wait_dm(target)).text()
    refused = await h.against(form, "m10", "kick", "m11", reason="x")
    assert is_error(refused) and "Kick Members" in refused.content
    await rejoin(h, target)


async def test_ban_forms_tempban_delete_days_and_unban(h: Harness) -> None:
    gid = h.guild.id
    banned = await h.slash("mod", "ban", user="m12", delete_days=1, reason="raid")
    assert banned.content.startswith(f"Case #1: Ban for {h.mention('m12')}.")
    (call,) = h.driver.rest_calls("PUT", route=BAN_ROUTE)
    assert call.query.get("delete_message_seconds") == "86400"  # where discord.py puts it
    temp = await h.prefix("mod", f"ban {h.mention('m13')} 2h delete:1 raiding again")
    assert temp.content.startswith(f"Case #2: Temporary ban (2h) for {h.mention('m13')}.")
    case = (await cases(gid))[1]
    assert case.reason == "raiding again" and case.action == CaseAction.TEMPBAN
    assert case.expires_at is not None
    assert abs((case.expires_at - case.created_at) - timedelta(hours=2)) < timedelta(seconds=1)
    assert {h.id_of("m12"), h.id_of("m13")} <= set(h.driver.guild(h.guild).bans)
    before = await snapshot()
    typo = await h.prefix("mod", f"ban {h.mention('m14')} 5q spam")
    assert is_error(typo) and "`q` is not a time unit" in typo.content
    not_banned = await h.slash("mod", "unban", user="m14", reason="x")
    assert is_error(not_banned) and "is not banned" in not_banned.content
    assert await snapshot() == before
    lifted = await h.prefix("mod", f"unban {h.mention('m13')} appeal accepted")
    assert lifted.content.startswith(f"Case #3: Unban for {h.mention('m13')}.")
    assert (await Case.get(guild_id=gid, number=2)).state == CaseState.EXPIRED
    await h.slash("mod", "unban", user="m12", reason="done")
    assert not h.driver.guild(h.guild).bans
    for name in ("m12", "m13"):
        await rejoin(h, name)


async def test_ban_by_id_of_someone_not_in_the_server(h: Harness) -> None:
    outsider = await h.driver.add_member(h.guild, "outsider")
    await h.driver.remove_member(h.guild, outsider)
    reply = await h.prefix("mod", f"ban {outsider.id} ban evasion")
    assert reply.content.startswith(f"Case #1: Ban for <@{outsider.id}>.")
    assert outsider.id in h.driver.guild(h.guild).bans
    h.driver.guild(h.guild).bans.pop(outsider.id)


@pytest.mark.parametrize("form", FORMS)
async def test_fine_takes_coins_and_opens_a_case(h: Harness, form: str) -> None:
    gid, target = h.guild.id, "m15"
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of(target), 100)
    reply = await h.against(form, "admin", "fine", target, amount=30, reason="spam")
    assert reply.content.startswith(f"Case #1: Fine of 30 coins for {h.mention(target)}.")
    assert await coins(gid, h.id_of(target)) == 70
    (case,) = await cases(gid)
    assert case.action == CaseAction.FINE and case.reason == "spam [30 coins]"
    before = await snapshot()
    for who, amount, text in [
        ("admin", 500, "Not enough coins"),
        ("admin", 0, "at least 1"),
        ("mod", 5, "Manage Server"),
    ]:
        bad = await h.against(form, who, "fine", target, amount=amount, reason="spam")
        assert is_error(bad) and text in bad.content, bad.content
    assert await snapshot() == before


@pytest.mark.parametrize("form", FORMS)
async def test_case_reason_and_pardon(h: Harness, form: str) -> None:
    gid = h.guild.id
    await h.slash("mod", "warn", member="m16", reason="first reason")
    shown = await h.staff(form, "mod", "case", "1", number=1)
    assert shown.embeds[0]["title"] == "Case #1 — Warning"
    assert shown.embeds[0]["description"] == "first reason"
    edited = await h.run(
        form, "mod2", "reason", "1 a better reason", number=1, new_reason="a better reason"
    )
    assert edited.content == "Case #1: reason updated."
    (edit,) = await CaseEdit.filter(case__guild_id=gid)
    assert (edit.old_value, edit.new_value, edit.editor_id) == (
        "first reason",
        "a better reason",
        h.id_of("mod2"),
    )
    history = await h.staff(form, "mod", "case", "1", number=1)
    assert "a better reason" in history.text() and "first reason" in history.text()
    unknown = await h.run(form, "mod", "case", "99", number=99)
    assert is_error(unknown) and "no case #99" in unknown.content
    pardoned = await h.run(form, "mod", "pardon", "1 mistake", number=1, reason="mistake")
    assert pardoned.content == f"Case #1 ({h.mention('m16')}) pardoned."
    twice = await h.run(form, "mod", "pardon", "1 again", number=1, reason="again")
    assert is_error(twice) and "already pardoned" in twice.content
    member = await h.run(form, "m16", "case", "1", number=1)
    assert is_error(member) and "Moderate Members" in member.content


async def test_pardon_lifts_an_active_tempban(h: Harness) -> None:
    await h.slash("mod", "ban", user="m17", duration="1d", reason="raid")
    assert h.id_of("m17") in h.driver.guild(h.guild).bans
    reply = await h.slash("mod", "pardon", number=1, reason="wrong person")
    assert reply.content.endswith("pardoned. The ban was lifted.")
    assert h.id_of("m17") not in h.driver.guild(h.guild).bans
    assert await h.bot.services.outbox.next_due([h.guild.id]) is None
    await rejoin(h, "m17")


async def test_modlog_pages_newest_first_with_filters(h: Harness) -> None:
    gid, target, cases = h.guild.id, h.id_of("m18"), h.bot.services.moderation
    for i in range(12):
        await cases.open_case(gid, CaseAction.WARN, target, h.id_of("mod"), f"warning {i}")
    await cases.open_case(gid, CaseAction.NOTE, target, h.id_of("mod2"), "a note")
    await cases.open_case(gid, CaseAction.WARN, h.id_of("m19"), h.id_of("mod"), "other")
    first = await h.slash("mod", "modlog", member="m18")
    text = first.embeds[0]["description"]
    assert first.ephemeral and text.startswith("`#13` **Note**")
    assert text.count("`#") == 10 and "`#14`" not in text
    turned = await h.click(first, first.custom_ids()[1], "mod")
    assert turned.embeds[0]["description"].count("`#") == 3
    assert "`#1` **Warning**" in turned.embeds[0]["description"]
    notes = await h.staff("prefix", "mod", "modlog", f"{h.mention('m18')} note")
    assert notes.embeds[0]["description"].count("`#") == 1
    by_mod2 = await h.slash("mod", "modlog", member="m18", moderator="mod2")
    assert by_mod2.embeds[0]["description"].startswith("`#13`")
    nothing = await h.slash("mod", "modlog", member="m18", action="ban")
    assert nothing.embeds[0]["description"] == "No cases."


@pytest.mark.parametrize("form", FORMS)
async def test_modlog_export_csv_and_json(h: Harness, form: str) -> None:
    gid = h.guild.id
    await h.bot.services.moderation.open_case(
        gid, CaseAction.WARN, h.id_of("m20"), h.id_of("mod"), '=HYPERLINK("x"), with a comma'
    )
    note = await h.bot.services.moderation.open_case(
        gid, CaseAction.NOTE, h.id_of("m21"), h.id_of("mod"), "note"
    )
    assert note.number == 2
    reply = await h.staff(form, "mod", "modlog-export")
    assert reply.content == "2 case(s) of this server."
    message = h.driver.world.messages[reply.id]
    files = {a.filename: a.data for a in message.attachments}
    assert set(files) == {f"cases-{gid}.csv", f"cases-{gid}.json"}
    rows = list(csv.DictReader(io.StringIO(files[f"cases-{gid}.csv"].decode())))
    assert [r["number"] for r in rows] == ["1", "2"]
    assert rows[0]["reason"].startswith("'=HYPERLINK") and rows[0]["target_id"] == str(
        h.id_of("m20")
    )
    data = json.loads(files[f"cases-{gid}.json"])
    assert data[0]["reason"].startswith("=HYPERLINK") and data[1]["action"] == "note"
    one = await h.staff(form, "mod", "modlog-export", h.mention("m21"), member="m21")
    assert one.content == f"1 case(s) of {h.mention('m21')}."
    refused = await h.run(form, "m1", "modlog-export")
    assert is_error(refused)


async def test_actions_done_by_hand_become_cases(h: Harness) -> None:
    gid = h.guild.id
    await modlog_on(h)

    async def case_of(name: str, action: CaseAction) -> Case:
        async def found() -> Case | None:
            return await Case.get_or_none(guild_id=gid, target_id=h.id_of(name), action=action)

        return await wait_for(found)

    await h.driver.ban(h.guild, "mod", "m22", reason="by hand")
    ban = await case_of("m22", CaseAction.BAN)
    assert (ban.moderator_id, ban.reason) == (h.id_of("mod"), "by hand")
    await h.driver.timeout(h.guild, "mod", "m23", 600, reason="cool off")
    timeout = await case_of("m23", CaseAction.TIMEOUT)
    assert timeout.expires_at is not None
    left = timeout.expires_at - datetime.now(UTC)
    assert timedelta(seconds=590) < left <= timedelta(seconds=600)
    await h.driver.timeout(h.guild, "mod", "m23", None)
    await case_of("m23", CaseAction.UNTIMEOUT)
    await h.driver.kick(h.guild, "mod", "m24")
    kick = await case_of("m24", CaseAction.KICK)
    assert kick.reason == "Done in Discord; no reason given."
    await h.driver.unban(h.guild, "mod", "m22")
    await case_of("m22", CaseAction.UNBAN)
    bot_ban = await h.slash("mod", "ban", user="m25", reason="by command")
    assert bot_ban.content.startswith("Case #6: Ban")
    await h.driver.kick(h.guild, "mod", "m26")  # a later event: the bot's own ban entry is past
    await case_of("m26", CaseAction.KICK)
    assert await Case.filter(guild_id=gid, target_id=h.id_of("m25")).count() == 1
    assert len(await cases(gid)) == 7
    await h.wait(lambda: True if len(modlog_posts(h)) >= 7 else None, "modlog posts")
    for name in ("m22", "m24", "m25", "m26"):
        await rejoin(h, name)


async def test_tempban_and_timeout_expire_on_time(h: Harness) -> None:
    gid = h.guild.id
    await h.slash("mod", "ban", user="m27", duration="1s", reason="short")
    await h.slash("mod", "timeout", member="m28", duration="1s", reason="short")
    await h.wait(
        lambda: True if h.id_of("m27") not in h.driver.guild(h.guild).bans else None,
        "the tempban to be lifted",
        within=10,
    )

    async def all_expired() -> bool:
        return all(c.state == CaseState.EXPIRED for c in await cases(gid))

    await wait_for(all_expired)
    unbans = [
        c
        for c in h.driver.rest_calls("DELETE", route=BAN_ROUTE)
        if c.path.endswith(f"/{h.id_of('m27')}")
    ]
    assert len(unbans) == 1
    await rejoin(h, "m27")
