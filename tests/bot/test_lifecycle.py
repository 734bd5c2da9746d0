"""Closing hands the shards over first, each serving until it is parked; commands in flight
finish; a command sent after the park is served by the next owner, never refused."""

from __future__ import annotations

import asyncio

from sandbox import SandboxServer
from tests.bot.harness import Harness, bot_settings, start_test_bot
from tests.conftest import Backend
from testsupport.keys import delete_keys
from testsupport.waiting import wait_for

CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"


async def test_close_parks_first_finishes_commands_in_flight_and_refuses_none(
    sandbox: SandboxServer, pg_url: str, redis_server_url: str, pg: Backend
) -> None:
    await delete_keys(pg.redis_client, "identify:*", "shard:*")
    settings = bot_settings(sandbox, pg_url, redis_server_url)
    first = await start_test_bot(settings)
    keeper = first.keeper
    assert keeper is not None
    h = Harness(sandbox, first, next(iter(sandbox.world.guilds.values())))
    sandbox.rate_limit_next(CALLBACK, count=1, retry_after=1.0)  # holds the reply for a second
    slow = await h.driver.slash(h.guild, "general", "m1", "daily")
    await wait_for(lambda: first.inflight.count == 1)
    closing = asyncio.create_task(first.close())
    await wait_for(lambda: not keeper.leases.held())
    assert not first.draining  # parked and saved, still finishing what it had
    later = await h.driver.slash(h.guild, "general", "m2", "balance")
    answer = await slow.wait_response()
    assert answer.content.startswith("You claimed 100 coins")
    await asyncio.wait_for(closing, 10)
    assert first.is_closed() and first.inflight.count == 0
    assert later.history == []  # the shard was parked: nothing reached the closing process
    second = await start_test_bot(settings)  # the next owner RESUMEs: Discord replays it
    try:
        reply = await later.wait_response(timeout=10)
        assert reply.content == "You hold 0 coins."
        assert [m.kind for m in later.history] == ["response"]
        assert sandbox.driver.sessions()[-1].resumes >= 1
    finally:
        await second.close()
