"""Closing drains: commands in flight finish, new ones are refused, then everything closes."""

from __future__ import annotations

import asyncio

from app.sandbox import SandboxServer
from tests.bot.harness import Harness, bot_settings, is_error, start_test_bot
from tests.services import wait_for

CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"


async def test_close_finishes_commands_in_flight_and_refuses_new_ones(
    sandbox: SandboxServer, pg_url: str, redis_server_url: str, pg: object
) -> None:
    bot = await start_test_bot(bot_settings(sandbox, pg_url, redis_server_url))
    h = Harness(sandbox, bot, next(iter(sandbox.world.guilds.values())))
    sandbox.rate_limit_next(CALLBACK, count=1, retry_after=1.0)  # holds the reply for a second
    slow = await h.driver.slash(h.guild, "general", "m1", "daily")

    async def in_flight() -> bool:
        return bot.inflight.count == 1

    async def draining() -> bool:
        return bot.draining

    await wait_for(in_flight)
    closing = asyncio.create_task(bot.close())
    await wait_for(draining)
    refused = await h.slash("m2", "balance")
    assert is_error(refused) and "restarting" in refused.content
    assert not closing.done()
    answer = await slow.wait_response()
    assert answer.content.startswith("You claimed 100 coins")
    await asyncio.wait_for(closing, 10)
    assert bot.is_closed() and bot.inflight.count == 0
