"""Economy commands end to end: slash and prefix, happy paths and refusals."""

from __future__ import annotations

import logging

import discord
import pytest

from app.bot.replies import NONCE_TRUSTED_S
from app.domain.economy import Bank
from app.domain.idempotency import request_key
from app.domain.types import LedgerKind
from sandbox import payloads
from sandbox.driver import MessageView
from sandbox.permissions import P
from sandbox.rest.interactions import CALLBACK
from tests.bot.harness import Harness, coins, is_error, ledger_count, snapshot
from testsupport.waiting import wait_for

FORMS = ["slash", "prefix"]


def bank(h: Harness) -> Bank:
    return h.bot.services.bank


async def test_slash_commands_carry_default_member_permissions(h: Harness) -> None:
    commands = {name: data for (name, kind), data in h.server.world.commands.items()}
    expected = {
        "profile",
        "balance",
        "daily",
        "transfer",
        "leaderboard",
        "rank",
        "give",
        "fine",
        "config",
        "warn",
        "note",
        "timeout",
        "untimeout",
        "kick",
        "ban",
        "unban",
        "pardon",
        "modlog",
        "case",
        "reason",
        "modlog-export",
    }
    assert expected <= set(commands)
    perms = {name: commands[name].get("default_member_permissions") for name in expected}
    perms = {name: None if value is None else str(value) for name, value in perms.items()}
    assert perms["warn"] == str(int(P.MODERATE_MEMBERS))
    assert perms["ban"] == str(int(P.BAN_MEMBERS))
    assert perms["kick"] == str(int(P.KICK_MEMBERS))
    assert perms["give"] == perms["config"] == perms["fine"] == str(int(P.MANAGE_GUILD))
    assert perms["balance"] is None and perms["transfer"] is None


@pytest.mark.parametrize("form", FORMS)
async def test_daily_then_balance(h: Harness, form: str) -> None:
    first = await h.run(form, "m1", "daily")
    assert "You claimed 100 coins" in first.content
    again = await h.run(form, "m1", "daily")
    assert is_error(again) and "already claimed" in again.content
    balance = await h.run(form, "m1", "balance")
    assert balance.content == "You hold 100 coins."
    assert await ledger_count(kind=LedgerKind.DAILY) == 1


@pytest.mark.parametrize("form", FORMS)
async def test_transfer_moves_coins_and_refuses_bad_requests(h: Harness, form: str) -> None:
    gid = h.guild.id
    await bank(h).grant(gid, h.id_of("admin"), h.id_of("m1"), 100)
    sent = await h.run(form, "m1", "transfer", f"{h.mention('m2')} 30", member="m2", amount=30)
    assert "Sent 30 coins" in sent.content and "Your balance: 70 coins" in sent.content
    assert (await coins(gid, h.id_of("m1")), await coins(gid, h.id_of("m2"))) == (70, 30)
    before = await snapshot()
    refusals = [
        ("m2", 71, "Not enough coins"),
        ("m2", 0, "at least 1"),
        ("m2", -5, "at least 1"),
        ("m1", 5, "yourself"),
        ("otherbot", 5, "bots have no account"),
    ]
    for target, amount, text in refusals:
        reply = await h.run(
            form, "m1", "transfer", f"{h.mention(target)} {amount}", member=target, amount=amount
        )
        assert is_error(reply) and text in reply.content, (target, amount, reply.content)
    assert await snapshot() == before


async def test_a_slash_transfer_defers_with_no_response_and_ignores_its_answer(h: Harness) -> None:
    """The deferral asks Discord for no response in return (a 204), and the bot's own answers,
    which the gateway sends back, are not parsed into messages."""
    await bank(h).grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    seen: list[discord.Message] = []

    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    h.bot.add_listener(on_message)
    earlier = len(h.driver.rest_calls("POST", route=CALLBACK))
    try:
        sent = await h.slash("m1", "transfer", member="m2", amount=30)
        assert "Sent 30 coins" in sent.content
        [defer] = h.driver.rest_calls("POST", route=CALLBACK)[earlier:]
        assert defer.json == {"type": 5} and "with_response" not in defer.query
        assert defer.status == 204
        reply = await h.prefix("m1", "balance")  # the bot's own message, then a member's:
        marker = await h.driver.send_message(h.guild, "general", "m2", "hello")
        await wait_for(lambda: any(m.id == marker.id for m in seen))  # delivered in order
    finally:
        h.bot.remove_listener(on_message)
    assert reply.content == "You hold 70 coins."
    assert h.bot.user is not None
    assert [m for m in seen if m.author.id == h.bot.user.id] == []
    assert [m.content for m in seen] == ["!balance", "hello"]


@pytest.mark.parametrize("form", FORMS)
async def test_a_settings_read_that_fails_leaves_the_coins_where_they_were(
    h: Harness, form: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The currency's name is read before the coins move: once they moved, no database read
    (PostgreSQL restarting) may stand between the move and its answer."""
    caplog.set_level(logging.CRITICAL, logger="app.bot.errors")  # the failure is expected
    await bank(h).grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    before = await snapshot()

    async def restarting(guild_id: int) -> object:
        raise ConnectionResetError("the database restarts")

    monkeypatch.setattr(h.bot.services.guilds, "cached", restarting)
    reply = await h.run(form, "m1", "transfer", f"{h.mention('m2')} 30", member="m2", amount=30)
    assert is_error(reply), reply.content
    assert await snapshot() == before  # an error answer, and nothing moved
    monkeypatch.undo()
    sent = await h.run(form, "m1", "transfer", f"{h.mention('m2')} 30", member="m2", amount=30)
    assert "Sent 30 coins" in sent.content


async def test_transfer_prefix_refuses_text_amount(h: Harness) -> None:
    before = await snapshot()
    reply = await h.prefix("m1", f"transfer {h.mention('m2')} lots")
    assert is_error(reply) and "`lots` is not a valid amount" in reply.content
    missing = await h.prefix("m1", "transfer")
    assert is_error(missing) and "Missing `member`" in missing.content
    assert await snapshot() == before


async def test_transfer_interaction_delivered_twice_moves_coins_once(h: Harness) -> None:
    gid, sender, recipient = h.guild.id, h.id_of("m3"), h.id_of("m4")
    await bank(h).grant(gid, h.id_of("admin"), sender, 100)
    handle = await h.driver.slash(h.guild, "general", "m3", "transfer", member="m4", amount=40)
    first = await handle.wait_response()
    record = h.driver.core.interactions.records[handle.id]
    h.driver.core.emit("INTERACTION_CREATE", record.payload, gid)  # a replay after a RESUME

    def replay_answered() -> bool | None:
        calls = h.driver.rest_calls("POST", path=f"/interactions/{handle.id}/")
        return True if [c.error_code for c in calls] == [None, 40060] else None

    await h.wait(replay_answered, "the replay's reply (refused: already acknowledged)")
    assert "Sent 40 coins" in first.content
    later = await h.slash("m3", "balance")
    assert later.content == "You hold 60 coins."
    assert (await coins(gid, sender), await coins(gid, recipient)) == (60, 40)
    assert await ledger_count(idempotency_key__startswith=f"tx:{handle.id}") == 2


def redeliver(h: Harness, sent: MessageView) -> None:
    """Deliver a message's MESSAGE_CREATE again, as a replay after a takeover would."""
    message = h.driver.world.messages[sent.id]
    data = payloads.message(h.driver.world, message, h.server.core.base_url)
    h.driver.core.emit("MESSAGE_CREATE", data, h.guild.id)


def answers_since(h: Harness, mark: int) -> list[str]:
    """The bot's messages in #general newer than the snowflake `mark`."""
    return [m.content for m in h.driver.bot_messages(h.guild, "general") if m.id > mark]


async def test_transfer_message_delivered_twice_is_applied_and_answered_once(h: Harness) -> None:
    gid = h.guild.id
    await bank(h).grant(gid, h.id_of("admin"), h.id_of("m5"), 100)
    sent = await h.driver.send_message(h.guild, "general", "m5", f"!transfer {h.mention('m6')} 25")
    first = await h.driver.wait_reply(sent)
    assert first.content.startswith("Sent 25 coins")
    repeats = h.driver.core.nonce_repeats
    redeliver(h, sent)
    # The second delivery answers under the first answer's nonce: Discord returns that message.
    await wait_for(lambda: h.driver.core.nonce_repeats == repeats + 1)
    assert answers_since(h, sent.id) == [first.content]
    assert (await coins(gid, h.id_of("m5")), await coins(gid, h.id_of("m6"))) == (75, 25)


async def test_a_delivery_killed_before_its_answer_leaves_the_answer_to_the_next(
    h: Harness,
) -> None:
    """The first delivery moved the coins and claimed the message, then its pod was killed
    before the reply: the replay on the next owner answers (the effect is not applied again)."""
    gid = h.guild.id
    await bank(h).grant(gid, h.id_of("admin"), h.id_of("m5"), 100)
    text = f"!transfer {h.mention('m6')} 25"
    core = h.driver.core
    sink, core.sink = core.sink, None  # stored, not delivered yet
    try:
        sent = await h.driver.send_message(h.guild, "general", "m5", text)
    finally:
        core.sink = sink
    key = request_key("tx", sent.id)  # the key the command's own delivery would use
    await bank(h).transfer(gid, h.id_of("m5"), h.id_of("m6"), 25, key=key)
    assert await h.bot.services.coord.replies.claim(sent.id)  # the killed delivery's claim
    redeliver(h, sent)
    reply = await h.driver.wait_reply(sent)
    assert reply.content.startswith("Sent 25 coins")
    assert answers_since(h, sent.id) == [reply.content]
    assert (await coins(gid, h.id_of("m5")), await coins(gid, h.id_of("m6"))) == (75, 25)


async def test_an_old_message_claimed_before_is_not_answered_again(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the age Discord remembers nonces for, a claimed message stays silent: a second
    answer is the greater risk there."""
    caplog.set_level(logging.INFO, logger="app.bot.replies")
    old = NONCE_TRUSTED_S + 30
    mark = h.driver.world.ids.next()  # the message's own id is old: its answers are newer
    sent = await h.driver.send_message(h.guild, "general", "m5", "!balance", sent_ago=old)
    first = await wait_for(lambda: answers_since(h, mark))  # too late to run: says so, claims
    redeliver(h, sent)
    await wait_for(lambda: any("answered already" in r.getMessage() for r in caplog.records))
    assert answers_since(h, mark) == first and "too late" in first[0]


@pytest.mark.parametrize("form", FORMS)
async def test_give_needs_manage_server(h: Harness, form: str) -> None:
    gid = h.guild.id
    given = await h.run(form, "admin", "give", f"{h.mention('m7')} 500", member="m7", amount=500)
    assert "Gave 500 coins" in given.content
    assert await coins(gid, h.id_of("m7")) == 500
    before = await snapshot()
    for who, target, amount, text in [
        ("mod", "m7", 5, "Manage Server"),
        ("m7", "m7", 5, "Manage Server"),
        ("admin", "m7", 0, "at least 1"),
        ("admin", "otherbot", 5, "bots have no account"),
    ]:
        reply = await h.run(
            form, who, "give", f"{h.mention(target)} {amount}", member=target, amount=amount
        )
        assert is_error(reply) and text in reply.content, reply.content
    assert await snapshot() == before


@pytest.mark.parametrize("form", FORMS)
async def test_profile_and_rank(h: Harness, form: str) -> None:
    gid = h.guild.id
    await bank(h).grant(gid, h.id_of("admin"), h.id_of("m8"), 300)
    await bank(h).grant(gid, h.id_of("admin"), h.id_of("m9"), 200)
    profile = await h.run(form, "m9", "profile", h.mention("m8"), member="m8")
    fields = {f["name"]: f["value"] for f in profile.embeds[0]["fields"]}
    assert fields["Coins"] == "300 coins" and fields["Rank"] == "#1"
    assert fields["Level"] == "0" and "100 to level 1" in fields["XP"]
    assert fields["Joined"].startswith("<t:")
    own = await h.run(form, "m9", "rank")
    assert own.content == f"{h.mention('m9')} is #2 with 200 coins."
    refused = await h.run(form, "m9", "rank", h.mention("otherbot"), member="otherbot")
    assert is_error(refused)


async def test_leaderboard_pages_with_buttons(h: Harness) -> None:
    gid = h.guild.id
    for i in range(1, 24):
        await bank(h).grant(gid, h.id_of("admin"), h.id_of(f"m{i}"), 1000 - i)
    first = await h.slash("m1", "leaderboard")
    assert "**1.** " + h.mention("m1") in first.embeds[0]["description"]
    assert first.embeds[0]["description"].count("\n") == 9
    _, following = first.custom_ids()
    assert first.components[0]["components"][0]["disabled"] is True
    refusal = await h.click(first, following, "m2")
    assert refusal.ephemeral and "Only the member who ran" in refusal.content
    turned = await h.click(first, following, "m1")
    assert "**11.** " + h.mention("m11") in turned.embeds[0]["description"]
    last = await h.prefix("m1", "leaderboard 3")
    assert "**21.** " in last.embeds[0]["description"]
    assert last.embeds[0]["footer"]["text"] == "Page 3"
    assert all(b["disabled"] for row in last.components for b in row["components"][1:])
    bad = await h.prefix("m1", "leaderboard 0")
    assert is_error(bad) and "page must be" in bad.content
