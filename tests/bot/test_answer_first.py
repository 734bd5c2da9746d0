"""No effect without an answer: a prefix command typed where the bot may not post does nothing.

The bot checks it can answer (View Channel, Send Messages, Embed Links) before it converts
arguments or changes anything, and tells the member by DM. Discord refusing a request for want
of a permission is a described refusal, never an ERROR in the log.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest

from app.bot.errors import describe
from sandbox.permissions import P
from sandbox.world import Overwrite
from tests.bot.harness import Harness, capture_errors, channel_changed, snapshot

COMMANDS = [
    ("admin", "give {m1} 100"),
    ("m2", "transfer {m1} 5"),
    ("m2", "daily"),
    ("mod", "warn {m1} spamming"),
    ("mod", "timeout {m1} 10m spamming"),
    ("admin", "config currency gems"),
]


@pytest.mark.parametrize("denied", [P.SEND_MESSAGES, P.EMBED_LINKS, P.VIEW_CHANNEL])
async def test_commands_where_the_bot_cannot_answer_change_nothing(h: Harness, denied: P) -> None:
    gid = h.guild.id
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m2"), 50)
    quiet = h.driver.channel(h.guild, "quiet")
    quiet.overwrites.append(Overwrite(h.bot.user.id, 1, deny=int(denied)))
    await channel_changed(h, quiet)
    try:
        before, posted = await snapshot(), len(h.driver.bot_messages(h.guild, "quiet"))
        with capture_errors() as errors:
            for who, text in COMMANDS:
                earlier = h.driver.dms(who)
                await h.driver.send_message(
                    h.guild, "quiet", who, "!" + text.format(m1=h.mention("m1"))
                )
                told = await h.driver.wait_dm(who, after=earlier[-1] if earlier else None)
                assert told.content.startswith(f"❌ I cannot answer in <#{quiet.id}>"), text
                assert "Nothing was done" in told.content
        assert await snapshot() == before
        assert len(h.driver.bot_messages(h.guild, "quiet")) == posted
        assert not h.driver.member(h.guild, "m1").timed_out()
        assert not errors.records, [r.getMessage() for r in errors.records]
    finally:
        quiet.overwrites.pop()
        await channel_changed(h, quiet)
    answered = await h.prefix("m2", "balance", at="quiet")
    assert answered.content == "You hold 50 coins."


async def test_slash_commands_answer_through_the_interaction(h: Harness) -> None:
    quiet = h.driver.channel(h.guild, "quiet")
    quiet.overwrites.append(Overwrite(h.bot.user.id, 1, deny=int(P.SEND_MESSAGES)))
    await channel_changed(h, quiet)
    try:
        reply = await h.slash("m3", "daily", at="quiet")
    finally:
        quiet.overwrites.pop()
        await channel_changed(h, quiet)
    assert reply.content.startswith("You claimed 100 coins")


def test_forbidden_is_a_described_refusal() -> None:
    response = SimpleNamespace(status=403, reason="Forbidden")
    data = {"code": 50013, "message": "Missing Permissions"}
    error = discord.Forbidden(cast(Any, response), data)  # a stand-in for aiohttp's response
    text = describe(error)
    assert text is not None and "I lack a permission" in text and "Missing Permissions" in text
