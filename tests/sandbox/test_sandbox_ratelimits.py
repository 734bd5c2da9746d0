"""Discord's REST limits in the sandbox, against raw HTTP and unmodified discord.py clients.

The limits' clock is frozen (``FakeClock``) where a test needs several requests in one second
or one bucket window; discord.py still sleeps in real time, so a test moves the clock on once
it has seen the refusal it expects.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import pytest
from sandbox_helpers import FakeClock, Rest, make_server, output_line, process
from tiny_bot import TinyBot, start_bot

from sandbox import RemoteDriver, SandboxServer, build_world
from sandbox.cli import _serve_parser, server_from_args
from sandbox.lazy_world import GuildTable
from sandbox.rate_ledger import EXEMPT, GLOBAL_COUNTED, INVALID, RateSecond
from sandbox.ratelimits import DISCORD_ROUTE_LIMITS, RouteLimit

MESSAGES = "POST /channels/{channel_id}/messages"


@asynccontextmanager
async def running(server: SandboxServer, **bot_options: Any) -> AsyncIterator[TinyBot]:
    """``server`` started, with an in-process TinyBot connected to it."""
    await server.start()
    try:
        bot = await start_bot(server.rest_base, server.gateway_url, **bot_options)
        try:
            yield bot
        finally:
            await bot.close()
    finally:
        await server.stop()


@asynccontextmanager
async def rest_client(server: SandboxServer) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession() as session:
        yield Rest(server, session)


def freeze(server: SandboxServer) -> FakeClock:
    """Stop the limits' clock in the middle of a second no request has seen yet."""
    clock = FakeClock(int(time.time()) + 60.5)
    server.rest.limits.clock = clock
    return clock


def second(server: SandboxServer, at: float) -> RateSecond:
    return next(s for s in server.driver.rate_stats(at).seconds if s.second == int(at))


async def ping(server: SandboxServer, guild_id: int) -> int:
    """A member says "ping" in the guild's #general; returns the message id."""
    guild = server.world.guilds[guild_id]
    author = next(m.id for m in guild.members.values() if not m.user.bot)
    return (await server.driver.send_message(guild_id, "general", author, "ping")).id


async def test_the_global_limit_is_one_per_token_across_processes() -> None:
    world = build_world(2, 6, 5, 6, seed=1, shard_count=2)
    here, there = list(world.guilds)  # shard 0 (this process) and shard 1 (the other)
    server = make_server(world, global_limit=4)
    async with running(server, shard_count=2, shard_ids=[0]):
        other_bot = ("tiny_bot.py", "--url", server.url, "--shard-count", "2", "--shard-ids", "1")
        async with process(*other_bot) as other:
            await output_line(other, "^READY ")
            await server.driver.wait_for_shards([0, 1])
            clock = freeze(server)
            for guild_id in (here, here, there, there):  # the token's four for this second
                await server.driver.wait_reply(await ping(server, guild_id))
            late = await ping(server, there)
            # (a start-up call of either bot, late on a busy machine, may draw one too)
            refused = await server.driver.wait_until(
                lambda: (
                    [c for c in server.driver.rest_calls(status=429) if c.route == MESSAGES[5:]]
                    or None
                ),
                5,
                "a 429 on the messages route",
            )
            assert refused[0].scope == "global"
            async with rest_client(server) as rest:  # a third client, the same token
                status, body, headers = await rest("GET", "/users/@me")
            assert status == 429 and body["global"] is True and body["retry_after"] == 0.5
            assert headers["X-RateLimit-Scope"] == "global"
            assert headers["X-RateLimit-Global"] == "true" and headers["Retry-After"] == "1"
            assert headers["Via"] and "X-RateLimit-Bucket" not in headers
            counts = second(server, clock.now)
            assert counts.get(GLOBAL_COUNTED) == 4 and counts.get("429_global") >= 2
            assert counts.get(INVALID) == counts.get("429_global")
            clock.now += 1  # the next second: the other process's retry gets through
            reply = await server.driver.wait_reply(late, timeout=10)
            assert reply.content.endswith("shard 1") and f"pid {os.getpid()} " not in reply.content
            assert second(server, clock.now).get(GLOBAL_COUNTED) == 1
            busiest = server.driver.rate_stats().busiest
            assert busiest is not None and busiest.get(GLOBAL_COUNTED) == 4


async def test_interaction_callbacks_and_followups_are_exempt() -> None:
    server = make_server(global_limit=2, global_limits={"raised": 4})
    async with running(server), rest_client(server) as rest:
        clock = freeze(server)
        statuses = [(await rest("GET", "/users/@me"))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        raised = Rest(server, rest.session, token="raised")  # another token, a raised limit
        assert [(await raised("GET", "/gateway"))[0] for _ in range(5)] == [200] * 4 + [429]
        handle = await server.driver.slash("Demo", "general", "alice", "roll", sides=6, count=2)
        assert (await handle.wait_response()).content.startswith("rolling 2d6")
        assert (await handle.wait_followup(0)).content == "total: 12"
        counts = second(server, clock.now)
        assert counts.get(EXEMPT) == 2 and counts.get(GLOBAL_COUNTED) == 6
        assert counts.get("429_global") == 2
        async with RemoteDriver(server.url) as remote:
            assert await remote.rate_stats() == server.driver.rate_stats()
            await remote.reset_rate_stats()
            assert (await remote.rate_stats()).seconds == []


async def test_a_route_bucket_counts_down_then_refuses() -> None:
    server = make_server(route_limits=True)
    await server.start()
    try:
        async with rest_client(server) as rest:
            clock = freeze(server)
            world = server.world
            general, modlog, announcements = (
                f"/channels/{world.channel('Demo', name).id}/messages"
                for name in ("general", "modlog", "announcements")
            )
            status, _, first = await rest("POST", general, {"content": "1"})
            limit, per = int(first["X-RateLimit-Limit"]), float(first["X-RateLimit-Reset-After"])
            assert status == 200 and int(first["X-RateLimit-Remaining"]) == limit - 1
            assert float(first["X-RateLimit-Reset"]) == pytest.approx(clock.now + per)
            for left in range(limit - 2, -1, -1):
                status, _, headers = await rest("POST", general, {"content": "n"})
                assert status == 200 and headers["X-RateLimit-Remaining"] == str(left)
                assert headers["X-RateLimit-Bucket"] == first["X-RateLimit-Bucket"]
            status, body, headers = await rest("POST", general, {"content": "over"})
            assert status == 429 and body["global"] is False and body["retry_after"] == per
            assert headers["X-RateLimit-Scope"] == "user" and headers["Via"]
            assert headers["X-RateLimit-Remaining"] == "0"
            assert headers["X-RateLimit-Bucket"] == first["X-RateLimit-Bucket"]
            # Another channel is another bucket; its errors carry the bucket's headers too.
            status, _, other = await rest("POST", modlog, {"content": "x"})
            assert status == 200 and other["X-RateLimit-Remaining"] == str(limit - 1)
            status, _, denied = await rest("POST", announcements, {"content": "x"})
            assert status == 403 and denied["X-RateLimit-Remaining"] == str(limit - 1)
            status, _, unlimited = await rest("GET", "/users/@me")
            assert int(unlimited["X-RateLimit-Limit"]) > 1000  # routes without a bucket
            clock.now += per
            status, _, again = await rest("POST", general, {"content": "later"})
            assert status == 200 and again["X-RateLimit-Remaining"] == str(limit - 1)
            counts = second(server, clock.now - per)
            assert counts.get("429_user") == 1 and counts.get(INVALID) == 2  # the 429, the 403
    finally:
        await server.stop()


async def test_discord_py_learns_that_two_routes_share_a_bucket() -> None:
    member_edit = RouteLimit(
        "member-edit",
        3,
        1.5,
        "guild_id",
        (
            "PATCH /guilds/{guild_id}/members/{user_id}",
            "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}",
        ),
    )
    server = make_server(route_limits=(member_edit,))
    async with running(server) as bot:
        guild = bot.guilds[0]
        alice = guild.get_member(server.driver.member("Demo", "alice").id)
        role = discord.utils.get(guild.roles, name="Member")
        assert alice is not None and role is not None
        await alice.edit(nick="a1")  # learns the PATCH route's bucket
        await alice.add_roles(role)  # the PUT route answers with the same bucket
        await alice.edit(nick="a2")  # the shared bucket is now empty
        await alice.add_roles(role)  # so discord.py waits for its reset instead of a 429
        calls = [
            c
            for c in server.driver.rest_calls()
            if c.route and c.route.startswith("/guilds/{guild_id}/members/{user_id}")
        ]
        assert [c.method for c in calls] == ["PATCH", "PUT", "PATCH", "PUT"]
        assert all(c.status < 300 for c in calls)
        assert calls[3].time - calls[0].time >= 1.4
        hashes = bot.http._bucket_hashes  # discord.py's route -> bucket table
        assert hashes["PATCH /guilds/{guild_id}/members/{user_id}"] == member_edit.bucket
        assert (
            hashes["PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}"] == member_edit.bucket
        )


async def test_invalid_requests_earn_a_cloudflare_ban() -> None:
    server = make_server(invalid_limit=3, ban_seconds=30)
    async with running(server) as bot:
        clock = freeze(server)
        guild = bot.guilds[0]
        moderator = discord.Object(server.driver.member("Demo", "moderator").id)
        for _ in range(3):  # the bot may not ban a moderator: 403, an invalid request each
            with pytest.raises(discord.Forbidden):
                await guild.ban(moderator)
        stats = server.driver.rate_stats()
        assert stats.invalid == {"127.0.0.1": 3} and stats.bans == []
        with pytest.raises(discord.Forbidden):
            await guild.ban(moderator)  # the fourth passes the limit
        stats = server.driver.rate_stats()
        assert [(b.client, b.start, b.until) for b in stats.bans] == [
            ("127.0.0.1", clock.now, clock.now + 30)
        ]
        with pytest.raises(discord.HTTPException) as caught:
            await bot.fetch_user(server.driver.user("alice").id)
        banned = caught.value
        assert banned.status == 429 and isinstance(banned.text, str) and "Error 1015" in banned.text
        headers = banned.response.headers
        assert headers["Content-Type"].startswith("text/html") and "Via" not in headers
        assert not any(h.lower().startswith("x-ratelimit") for h in headers)
        assert all(s.connected for s in server.driver.sessions())  # the gateway is not banned
        assert server.driver.rest_calls(status=429)[-1].scope == "cloudflare"
        clock.now += 31
        assert (await bot.fetch_user(server.driver.user("alice").id)).name == "alice"
        counts = second(server, clock.now - 31)
        assert counts.get(INVALID) == 4 and counts.get("banned") == 1


async def test_shared_and_proxy_429s_are_not_invalid_and_a_proxy_429_is_not_retried() -> None:
    server = make_server()
    async with running(server) as bot:
        clock = freeze(server)
        channel = bot.get_channel(server.driver.channel("Demo", "general").id)
        assert isinstance(channel, discord.TextChannel)
        server.rate_limit_next(MESSAGES, retry_after=0.1, scope="shared")
        await channel.send("after a shared 429")  # Discord's shape: discord.py retries
        server.rate_limit_next(MESSAGES, retry_after=1, proxy=True)
        with pytest.raises(discord.HTTPException) as caught:  # no Via: discord.py gives up
            await channel.send("through a proxy")
        assert caught.value.status == 429
        headers = caught.value.response.headers
        assert headers["generated-by-proxy"] == "true" and "Via" not in headers
        assert headers["x-ratelimit-scope"] == "user" and headers["retry-after"] == "1"
        server.rate_limit_next(MESSAGES, retry_after=0.1)
        await channel.send("after a user 429")
        scopes = [c.scope for c in server.driver.rest_calls(status=429)]
        assert scopes == ["shared", "proxy", "user"]
        counts = second(server, clock.now)
        by_scope = [counts.get(f"429_{scope}") for scope in ("shared", "proxy", "user")]
        assert by_scope == [1, 1, 1] and counts.get(INVALID) == 1


async def test_the_proxy_429_has_nirn_proxys_shape(rest: Rest, server: SandboxServer) -> None:
    server.rate_limit_next("GET /users/@me", retry_after=1, proxy=True)
    status, body, headers = await rest("GET", "/users/@me")
    assert status == 429
    assert body == {"global": False, "message": "You are being rate limited.", "retry_after": 1}
    assert headers["Content-Type"] == "application/json" and "Via" not in headers
    assert headers["x-ratelimit-reset"].isdigit()
    nirn = {
        "generated-by-proxy": "true",
        "x-ratelimit-scope": "user",
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-after": "1",
        "retry-after": "1",
    }
    assert {name: headers[name] for name in nirn} == nirn


def test_every_bucketed_route_exists_and_serve_flags_turn_the_limits_on() -> None:
    server = make_server()
    routes = {f"{r.method} {r.template}" for r in server.rest.routes.routes}
    assert {spec for limit in DISCORD_ROUTE_LIMITS for spec in limit.routes} <= routes
    assert make_server().settings.global_limit is None  # all off by default
    argv = "--guilds 10 --lazy --global-limit 50 --route-limits --invalid-limit 10000"
    served = server_from_args(_serve_parser().parse_args([*argv.split(), "--ban-seconds", "60"]))
    settings = served.settings
    assert (settings.global_limit, settings.invalid_limit, settings.ban_seconds) == (50, 10_000, 60)
    assert settings.route_limits == DISCORD_ROUTE_LIMITS and settings.invalid_window == 600
    assert isinstance(served.world.guilds, GuildTable)
