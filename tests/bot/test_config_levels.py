"""Guild settings (`config ...`) and XP with level-up messages, end to end."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.models import Member
from sandbox.permissions import P
from sandbox.world import Overwrite
from tests.bot.harness import Harness, channel_changed, is_error, snapshot

FORMS = ["slash", "prefix"]


def channel_id(h: Harness, name: str) -> int:
    return h.driver.channel(h.guild, name).id


@pytest.mark.parametrize("form", FORMS)
async def test_config_changes_each_setting(h: Harness, form: str) -> None:
    gid = h.guild.id
    shown = await h.run(form, "admin", "config", sub="show" if form == "slash" else None)
    fields = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}
    assert fields["Currency"] == "coins" and fields["Modlog channel"] == "none"
    ref = {name: f"<#{channel_id(h, name)}>" for name in ("modlog", "levels", "quiet")}
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("currency", "gems", {"name": "gems"}),
        ("daily", "250", {"amount": 250}),
        ("xp", "5 9", {"minimum": 5, "maximum": 9}),
        ("modlog", ref["modlog"], {"channel": "modlog"}),
        ("levelup", f"channel {ref['levels']}", {"where": "channel", "channel": "levels"}),
        ("noxp", f"add {ref['quiet']}", {"action": "add", "channel": "quiet"}),
    ]
    for sub, args, options in steps:
        reply = await h.run(form, "admin", "config", args, sub=sub, **options)
        assert reply.content.startswith("Saved:"), (sub, reply.content)
    row = await h.bot.services.guilds.get(gid)
    assert (row.currency_name, row.daily_amount, row.xp_min, row.xp_max) == ("gems", 250, 5, 9)
    assert row.modlog_channel_id == channel_id(h, "modlog")
    assert row.levelup_channel_id == channel_id(h, "levels") and not row.levelup_dm
    assert row.no_xp_channel_ids == (channel_id(h, "quiet"),)
    balance = await h.run(form, "m1", "balance")
    assert balance.content == "You hold 0 gems."
    dm = await h.run(form, "admin", "config", "dm", sub="levelup", where="dm")
    assert "by DM" in dm.content and (await h.bot.services.guilds.get(gid)).levelup_dm
    removed = await h.run(
        form,
        "admin",
        "config",
        f"remove {ref['quiet']}",
        sub="noxp",
        action="remove",
        channel="quiet",
    )
    assert removed.content.startswith("Saved:")
    assert (await h.bot.services.guilds.get(gid)).no_xp_channel_ids == ()
    off = await h.run(form, "admin", "config", "off", sub="modlog")
    assert "no longer posted" in off.content
    assert (await h.bot.services.guilds.get(gid)).modlog_channel_id is None


@pytest.mark.parametrize("form", FORMS)
async def test_config_refusals_write_nothing(h: Harness, form: str) -> None:
    await h.bot.services.guilds.get(h.guild.id)
    general = h.driver.channel(h.guild, "general")
    before = await snapshot()
    cases: list[tuple[str, str, str, dict[str, Any], str]] = [
        ("mod", "currency", "gems", {"name": "gems"}, "Manage Server"),
        ("m1", "daily", "5", {"amount": 5}, "Manage Server"),
        ("admin", "xp", "10 5", {"minimum": 10, "maximum": 5}, "minimum at or below"),
        ("admin", "daily", "0", {"amount": 0}, "at least 1"),
        ("admin", "currency", "x" * 40, {"name": "x" * 40}, "1 to 32 characters"),
        ("admin", "levelup", "channel", {"where": "channel"}, "Name the channel"),
    ]
    for who, sub, args, options, text in cases:
        reply = await h.run(form, who, "config", args, sub=sub, **options)
        assert is_error(reply) and text in reply.content, (sub, reply.content)
    general.overwrites.append(Overwrite(h.bot.user.id, 1, deny=int(P.SEND_MESSAGES)))
    await channel_changed(h, general)
    try:
        hidden = await h.run(
            form,
            "admin",
            "config",
            f"<#{general.id}>",
            sub="modlog",
            at="levels",
            channel="general",
        )
    finally:
        general.overwrites.pop()
        await channel_changed(h, general)
    assert is_error(hidden) and "I cannot post in" in hidden.content
    assert await snapshot() == before


async def xp_of(h: Harness, name: str) -> int:
    row = await Member.get_or_none(guild_id=h.guild.id, user_id=h.id_of(name))
    return row.xp if row else 0


async def test_messages_earn_xp_and_announce_level_ups(h: Harness) -> None:
    configs = h.bot.services.guilds
    await configs.set_xp_range(h.guild.id, 150, 150)
    sent = await h.driver.send_message(h.guild, "general", "m2", "hello everyone")
    announced = await h.driver.wait_reply(sent)
    assert announced.content == f"{h.mention('m2')} reached level 1!"
    assert h.driver.world.messages[announced.id].mention_ids == [h.id_of("m2")]  # pinged
    assert await xp_of(h, "m2") == 150
    await h.driver.send_message(h.guild, "general", "m2", "again, within the cooldown")
    await h.driver.send_message(h.guild, "general", "otherbot", "bots earn nothing")
    command = await h.prefix("m6", "balance")  # commands earn nothing either
    assert command.content == "You hold 0 coins."
    await configs.set_xp_excluded(h.guild.id, channel_id(h, "quiet"), True)
    await configs.set_levelup(h.guild.id, channel_id=channel_id(h, "levels"))
    await h.driver.send_message(h.guild, "quiet", "m3", "no xp here")
    await h.driver.send_message(h.guild, "general", "m4", "to the levels channel")

    await h.wait(
        lambda: next(
            (
                m
                for m in h.driver.bot_messages(h.guild, "levels")
                if m.content == f"{h.mention('m4')} reached level 1!"
            ),
            None,
        ),
        "the level-up message in #levels",
    )
    assert await xp_of(h, "m2") == 150 and await xp_of(h, "m3") == 0
    assert await xp_of(h, "otherbot") == 0 and await xp_of(h, "m6") == 0
    await configs.set_levelup(h.guild.id, dm=True)
    await h.driver.send_message(h.guild, "general", "m5", "tell me privately")
    dm = await h.driver.wait_dm("m5")
    assert dm.content == "You reached level 1 in Guild 0!"
