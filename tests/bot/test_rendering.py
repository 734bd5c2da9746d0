"""How amounts, durations, settings, ranks and exports read (end to end)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from app.domain.types import CaseAction
from tests.bot.harness import Harness, is_error
from testsupport.waiting import wait_for

FORMS = ["slash", "prefix"]


@pytest.mark.parametrize("form", FORMS)
async def test_one_coin_is_singular(h: Harness, form: str) -> None:
    given = await h.run(form, "admin", "give", f"{h.mention('m1')} 1", member="m1", amount=1)
    assert given.content == f"Gave 1 coin to {h.mention('m1')}. Their balance: 1 coin."
    assert (await h.run(form, "m1", "balance")).content == "You hold 1 coin."


@pytest.mark.parametrize("form", FORMS)
async def test_refusals_count_in_the_servers_currency(h: Harness, form: str) -> None:
    gid = h.guild.id
    await h.bot.services.guilds.set_currency(gid, "gems")
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m2"), 1000)
    reply = await h.run(form, "m2", "transfer", f"{h.mention('m3')} 2500", member="m3", amount=2500)
    assert is_error(reply) and reply.content.endswith(
        "Not enough gems: the balance is 1,000 gems, 2,500 gems needed."
    ), reply.content
    fine = await h.run(
        form, "admin", "fine", f"{h.mention('m3')} 1 x", member="m3", amount=1, reason="x"
    )
    assert is_error(fine) and "Not enough gems: the balance is 0 gems, 1 gem needed." in (
        fine.content
    )


@pytest.mark.parametrize("form", FORMS)
async def test_xp_off_is_shown_as_off(h: Harness, form: str) -> None:
    reply = await h.run(form, "admin", "config", "0 0", sub="xp", minimum=0, maximum=0)
    assert reply.content == "Saved: XP turned off."
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert fields["XP per message"] == "off"


@pytest.mark.parametrize("form", FORMS)
async def test_members_without_coins_are_not_ranked(h: Harness, form: str) -> None:
    gid = h.guild.id
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m4"), 10)
    rank = await h.run(form, "m5", "rank")
    assert rank.content == f"{h.mention('m5')} is not ranked yet: they hold no coins."
    profile = await h.run(form, "m5", "profile")
    assert {f["name"]: f["value"] for f in profile.embeds[0]["fields"]}["Rank"] == (
        "not ranked yet"
    )
    board = await h.run(form, "m5", "leaderboard")
    text = board.embeds[0]["description"]
    assert text == f"**1.** {h.mention('m4')} — 10 coins"
    assert (await h.run(form, "m4", "rank")).content == f"{h.mention('m4')} is #1 with 10 coins."


async def test_members_who_left_stay_on_the_leaderboard_by_name(h: Harness) -> None:
    gid = h.guild.id
    await h.bot.services.guilds.set_xp_range(gid, 15, 25)  # an earlier test turned XP off
    h.driver.member(h.guild, "m6").nick = "Sixth"
    await h.driver.send_message(h.guild, "general", "m6", "hello")  # XP records the name
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m6"), 30)
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m7"), 20)

    async def recorded() -> dict[int, str]:
        return await h.bot.services.bank.display_names(gid, [h.id_of("m6")])

    assert await wait_for(recorded) == {h.id_of("m6"): "Sixth"}
    await h.driver.remove_member(h.guild, "m6")
    try:
        board = await h.slash("m7", "leaderboard")
    finally:
        await h.driver.add_member(h.guild, "m6", roles=["Member"])
        h.driver.member(h.guild, "m6").nick = None
    lines = board.embeds[0]["description"].split("\n")
    assert lines == ["**1.** Sixth (left) — 30 coins", f"**2.** {h.mention('m7')} — 20 coins"]


async def test_a_ten_minute_timeout_by_hand_reads_ten_minutes(h: Harness) -> None:
    gid = h.guild.id
    await h.bot.services.guilds.set_modlog(gid, h.driver.channel(h.guild, "modlog").id)
    await h.driver.timeout(h.guild, "mod", "m8", 600, reason="cool off")

    def posted() -> str | None:
        titles = [m.embeds[0]["title"] for m in h.driver.bot_messages(h.guild, "modlog")]
        return next((t for t in titles if "Timeout (" in t), None)

    assert await h.wait(posted, "the modlog post") == "Case #1 — Timeout (10m)"
    await h.driver.timeout(h.guild, "mod", "m8", None)

    async def lifted() -> bool:
        return len([c async for c in h.bot.services.moderation.export(gid)]) == 2

    await wait_for(lifted)  # the audit entry's case, before the next test empties the tables


async def test_export_names_people_and_spells_out_dm_delivery(h: Harness) -> None:
    gid = h.guild.id
    await h.slash("mod", "warn", member="m9", reason="told")
    h.driver.set_dms_closed("m10")
    try:
        await h.slash("mod", "warn", member="m10", reason="not told")
    finally:
        h.driver.set_dms_closed("m10", False)
    await h.bot.services.moderation.open_case(
        gid, CaseAction.NOTE, h.id_of("m11"), h.id_of("mod2"), "a note"
    )
    await h.bot.services.bank.profile(gid, 999_999_999_999_999_999, "Gone Person")
    await h.bot.services.moderation.open_case(
        gid, CaseAction.BAN, 999_999_999_999_999_999, h.id_of("mod"), "left long ago"
    )
    reply = await h.staff("slash", "mod", "modlog-export")
    files = {a.filename: a.data for a in h.driver.world.messages[reply.id].attachments}
    rows = list(csv.DictReader(io.StringIO(files[f"cases-{gid}.csv"].decode())))
    shown = [(r["target_name"], r["moderator_name"], r["dm_delivered"]) for r in rows]
    assert shown == [
        ("m9", "mod", "yes"),
        ("m10", "mod", "no"),
        ("m11", "mod2", "not sent"),
        ("Gone Person", "mod", "not sent"),
    ]
    data = json.loads(files[f"cases-{gid}.json"])
    assert data[0]["target_id"] == str(h.id_of("m9")) and data[0]["target_name"] == "m9"
