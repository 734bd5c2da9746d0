"""The discord.py internals the bot relies on (app/bot/discord_internals.py) still exist and
behave: an upgrade that moves one fails here, by name."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import discord.gateway
import pytest
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.shard import Shard

from app.bot import discord_internals as internals
from app.bot.client import GuildBot, GuildTree
from app.config import Settings
from testsupport.waiting import wait_for


def make_bot() -> GuildBot:
    """A bot that never connects (nothing listens on port 9)."""
    settings = Settings(
        _env_file=None,
        discord_api_base="http://127.0.0.1:9/api/v10",
        discord_gateway_url="ws://127.0.0.1:9/",
    )
    return GuildBot(settings, with_services=False, shard_count=2, shard_ids=[0, 1])


def test_every_internal_is_present_on_the_installed_discord_py() -> None:
    bot = make_bot()  # never logged in: nothing to close
    assert internals.missing_internals(bot) == []
    assert internals.shards_of(bot) == {}
    internals.set_shards(bot, [1], 4)
    state = bot._connection
    assert (bot.shard_ids, state.shard_ids, state.shard_count) == ([1], [1], 4)
    assert isinstance(bot.tree, GuildTree)


@pytest.mark.parametrize(
    ("owner", "name", "what"),
    [
        (Shard, "_cancel_task", "Shard._cancel_task"),
        (
            discord.state.ConnectionState,
            "_add_guild_from_data",
            "ConnectionState._add_guild_from_data",
        ),
        (discord.app_commands.CommandTree, "_call", "CommandTree._call"),
    ],
)
def test_a_renamed_internal_is_reported_by_name(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, what: str
) -> None:
    monkeypatch.delattr(owner, name)
    assert what in internals.missing_internals()


def test_a_renamed_instance_attribute_is_reported() -> None:
    bot = make_bot()
    del bot._AutoShardedClient__shards  # type: ignore[attr-defined]  # private, so untyped
    assert internals.missing_internals(bot) == ["client._AutoShardedClient__shards"]


def test_a_response_that_caches_its_headers_elsewhere_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiohttp.ClientResponse, "__init__", lambda self: None)
    assert internals.missing_internals() == ["aiohttp.ClientResponse()._cache"]


def test_point_discord_redirects_rest_and_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    internals.point_discord("http://127.0.0.1:1234/api/v10/", "ws://127.0.0.1:1234/")
    assert discord.http.Route.BASE == "http://127.0.0.1:1234/api/v10"
    assert internals.default_gateway() == yarl.URL("ws://127.0.0.1:1234/")
    route = discord.http.Route("GET", "/users/@me")
    assert route.url == "http://127.0.0.1:1234/api/v10/users/@me"


@pytest.mark.parametrize(
    ("handler", "measured_from"),
    [(internals.RoundTripKeepAlive.__base__, "the previous heartbeat"), (None, "this heartbeat")],
)
def test_the_round_trip_is_measured_from_the_heartbeat_it_acknowledges(
    handler: type | None, measured_from: str
) -> None:
    """The race: the ACK is handled before the keep-alive thread stamps the send time, which
    still holds the previous heartbeat's (here 41 s ago)."""
    keep_alive = (handler or internals.RoundTripKeepAlive)(
        ws=SimpleNamespace(thread_id=0, _max_heartbeat_timeout=60.0, HEARTBEAT=1, sequence=7),
        interval=41.25,
        shard_id=0,
    )
    keep_alive._last_send = time.perf_counter() - 41.25
    assert keep_alive.get_payload() == {"op": 1, "d": 7}
    keep_alive.ack()
    latency = keep_alive.latency
    assert (latency > 41) if measured_from == "the previous heartbeat" else (latency < 1)


def test_bots_measure_round_trips() -> None:
    make_bot()
    assert discord.gateway.KeepAliveHandler is internals.RoundTripKeepAlive


async def refuse_and_hang_up(request: web.Request) -> web.WebSocketResponse:
    """Discord refusing a session: a close frame (4011), then its end of the TCP connection."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    assert request.transport is not None
    request.transport.write(b"\x88\x02" + (4011).to_bytes(2, "big"))
    request.transport.close()
    return ws


@pytest.mark.parametrize(("kept", "seen"), [(False, 1006), (True, 4011)])
async def test_discords_close_code_survives_a_socket_closed_before_the_answer(
    kept: bool, seen: int
) -> None:
    """What discord.py's poll_event does once the close frame and the hang-up have both arrived:
    read the close, answer it with 4000, read `close_code`. aiohttp's failed answer writes 1006
    over 4011 (so discord.py would identify again); keep_peer_close_codes keeps 4011."""
    app = web.Application()
    app.router.add_get("/", refuse_and_hang_up)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:

            async def connect(url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
                return await session.ws_connect(url, autoclose=False, max_msg_size=0)

            bot: Any = SimpleNamespace(http=SimpleNamespace(ws_connect=connect))
            if kept:
                internals.keep_peer_close_codes(bot)
            socket = await bot.http.ws_connect(f"http://127.0.0.1:{port}/")
            await wait_for(lambda: socket._reader.is_eof(), within=10)  # the hang-up is in
            msg = await socket.receive()
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 4011)
            await socket.close(code=internals.RESUMABLE_CLOSE)
            assert socket.close_code == seen
    finally:
        await runner.cleanup()
