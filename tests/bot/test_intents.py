"""Without the Message Content intent the bot asks for no content and answers prefix commands
only when mentioned; the gateway intents are exactly what the features need."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.bot.client import GuildBot
from sandbox import SandboxServer
from tests.bot.harness import Harness, bot_settings, start_test_bot

GUILDS, GUILD_MODERATION, GUILD_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 2, 1 << 9, 1 << 15


@pytest.fixture(scope="module")
async def module_bot(
    sandbox: SandboxServer, pg_url: str, redis_server_url: str
) -> AsyncIterator[GuildBot]:
    """This module's bot runs without the Message Content intent."""
    settings = bot_settings(sandbox, pg_url, redis_server_url, message_content_intent=False)
    bot = await start_test_bot(settings)
    yield bot
    await bot.close()


async def test_only_needed_intents_and_mention_prefix(h: Harness) -> None:
    (session,) = h.driver.sessions()
    assert session.intents == GUILDS | GUILD_MODERATION | GUILD_MESSAGES
    ignored = await h.driver.send_message(h.guild, "general", "m1", "!balance")
    mentioned = await h.driver.send_message(h.guild, "general", "m1", f"<@{h.bot.user.id}> balance")
    reply = await h.driver.wait_reply(mentioned)
    assert reply.content == "You hold 0 coins."
    answers = [m for m in h.driver.bot_messages(h.guild, "general") if m.id > ignored.id]
    assert answers == [reply]  # events arrive in order: "!balance" got nothing
    assert (await h.slash("m1", "balance")).content == "You hold 0 coins."
