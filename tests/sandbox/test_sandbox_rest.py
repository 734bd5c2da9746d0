"""REST behaviour checked with a plain HTTP client: shapes, errors, permissions, rate limits."""

from __future__ import annotations

import datetime as dt

import pytest
from sandbox_helpers import Rest

from sandbox import RemoteDriver, SandboxServer, SandboxTimeout, payloads
from sandbox.errors import SandboxError
from sandbox.snowflake import timestamp_ms


def ids(server: SandboxServer) -> dict[str, int]:
    world = server.world
    guild = world.guild("Demo")
    found = {n: world.member(guild, n).id for n in ("owner", "moderator", "alice", "bob")}
    found |= {
        "guild": guild.id,
        "general": world.channel(guild, "general").id,
        "announcements": world.channel(guild, "announcements").id,
    }
    found |= {r.name: r.id for r in guild.roles.values()}
    return found


async def test_identity_shapes_and_unknown_routes(server: SandboxServer, rest: Rest) -> None:
    status, me, headers = await rest("GET", "/users/@me")
    assert status == 200 and me["bot"] is True and me["id"] == str(server.world.bot.id)
    assert headers["Content-Type"] == "application/json"
    assert "X-RateLimit-Remaining" in headers
    status, gateway, _ = await rest("GET", "/gateway/bot")
    assert gateway["url"] == server.gateway_url and gateway["shards"] == 1
    assert gateway["session_start_limit"]["remaining"] == 1000
    status, body, _ = await rest("GET", "/no/such/route")
    assert (status, body) == (404, {"message": "404: Not Found", "code": 0})
    unknown = server.driver.rest_calls(path="/no/such")
    assert len(unknown) == 1 and unknown[0].route is None and unknown[0].status == 404
    status, body, _ = await rest("GET", f"/guilds/{ids(server)['guild']}/members/1")
    assert (status, body["code"]) == (404, 10007)


async def test_moderation_hierarchy_and_owner(server: SandboxServer, rest: Rest) -> None:
    i = ids(server)
    guild = f"/guilds/{i['guild']}"
    for target in ("owner", "moderator"):
        status, body, _ = await rest("DELETE", f"{guild}/members/{i[target]}")
        assert (status, body) == (403, {"message": "Missing Permissions", "code": 50013})
    status, _, _ = await rest("PUT", f"{guild}/members/{i['bob']}/roles/{i['Moderator']}")
    assert status == 403
    status, _, _ = await rest("DELETE", f"{guild}/members/{i['bob']}/roles/{i['Member']}")
    assert status == 204 and i["Member"] not in server.world.guild("Demo").members[i["bob"]].roles
    status, _, _ = await rest("DELETE", f"{guild}/members/{i['alice']}")
    assert status == 204 and i["alice"] not in server.world.guild("Demo").members
    status, _, _ = await rest("PUT", f"{guild}/bans/{i['bob']}", {"delete_message_seconds": 0})
    assert status == 204
    status, bans, _ = await rest("GET", f"{guild}/bans")
    assert [b["user"]["id"] for b in bans] == [str(i["bob"])]
    actions = [
        (e["action_type"], e["user_id"], e["target_id"])
        for e in server.world.guild("Demo").audit_log
    ]
    bot = str(server.world.bot.id)
    assert actions == [
        (25, bot, str(i["bob"])),
        (20, bot, str(i["alice"])),
        (22, bot, str(i["bob"])),
    ]
    status, body, _ = await rest("DELETE", f"{guild}/bans/{i['alice']}")
    assert (status, body["code"]) == (404, 10026)


async def test_timeouts_are_capped_at_28_days(server: SandboxServer, rest: Rest) -> None:
    i = ids(server)
    path = f"/guilds/{i['guild']}/members/{i['alice']}"
    too_far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=29)).isoformat()
    status, body, _ = await rest("PATCH", path, {"communication_disabled_until": too_far})
    assert status == 400 and body["code"] == 50035
    assert "communication_disabled_until" in body["errors"]
    fine = (dt.datetime.now(dt.UTC) + dt.timedelta(days=27)).isoformat()
    status, member, _ = await rest("PATCH", path, {"communication_disabled_until": fine})
    assert status == 200 and member["communication_disabled_until"] is not None
    entry = server.world.guild("Demo").audit_log[-1]
    assert entry["action_type"] == 24
    assert entry["changes"][0]["key"] == "communication_disabled_until"
    status, _, _ = await rest(
        "PATCH",
        f"/guilds/{i['guild']}/members/{i['moderator']}",
        {"communication_disabled_until": fine},
    )
    assert status == 403


async def test_messages_dms_and_channel_permissions(server: SandboxServer, rest: Rest) -> None:
    i = ids(server)
    status, body, _ = await rest(
        "POST", f"/channels/{i['announcements']}/messages", {"content": "hi"}
    )
    assert (status, body["code"]) == (403, 50013)
    status, body, _ = await rest("POST", f"/channels/{i['general']}/messages", {"content": ""})
    assert (status, body["code"]) == (400, 50006)
    status, body, _ = await rest(
        "POST", f"/channels/{i['general']}/messages", {"content": "x" * 2001}
    )
    assert (status, body["code"]) == (400, 50035)
    status, channel, _ = await rest("POST", "/users/@me/channels", {"recipient_id": i["bob"]})
    assert status == 200 and channel["type"] == 1
    status, sent, _ = await rest("POST", f"/channels/{channel['id']}/messages", {"content": "a"})
    assert status == 200 and server.driver.dms("bob")[0].id == int(sent["id"])
    server.driver.set_dms_closed("bob")
    status, body, _ = await rest("POST", f"/channels/{channel['id']}/messages", {"content": "b"})
    assert (status, body) == (403, {"message": "Cannot send messages to this user", "code": 50007})


async def test_an_enforced_nonce_returns_the_earlier_message(
    server: SandboxServer, rest: Rest
) -> None:
    path = f"/channels/{ids(server)['general']}/messages"
    before = len(server.driver.bot_messages("Demo", "general"))
    once = {"content": "one", "nonce": "123.0", "enforce_nonce": True}
    _, first, _ = await rest("POST", path, once)
    _, again, _ = await rest("POST", path, {**once, "content": "two"})
    assert again["id"] == first["id"] and again["content"] == "one"
    _, loose, _ = await rest("POST", path, {"content": "three", "nonce": "123.0"})
    assert loose["id"] != first["id"]  # without enforce_nonce a nonce is only echoed
    status, body, _ = await rest("POST", path, {"content": "x", "nonce": "9" * 26})
    assert (status, body["code"]) == (400, 50035)
    assert len(server.driver.bot_messages("Demo", "general")) == before + 2
    assert server.core.nonce_repeats == 1


async def test_nonces_past_the_window_are_forgotten_as_new_ones_come(
    server: SandboxServer, rest: Rest, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/channels/{ids(server)['general']}/messages"
    for n in range(3):
        await rest("POST", path, {"content": "x", "nonce": f"{n}.0", "enforce_nonce": True})
    assert len(server.core.nonces) == 3
    monkeypatch.setattr(server.core.settings, "nonce_window", 0.0)  # every nonce is now too old
    _, last, _ = await rest("POST", path, {"content": "y", "nonce": "0.0", "enforce_nonce": True})
    assert [seen for seen, _ in server.core.nonces.values()] == [int(last["id"])]
    assert server.core.nonce_repeats == 0


async def test_rate_limit_switch_answers_429_like_discord(
    server: SandboxServer, rest: Rest
) -> None:
    server.rate_limit_next("GET /users/@me", count=2, retry_after=0.25)
    for _ in range(2):
        status, body, headers = await rest("GET", "/users/@me")
        assert status == 429
        assert body == {
            "message": "You are being rate limited.",
            "retry_after": 0.25,
            "global": False,
            "code": 0,
        }
        assert headers["Via"] == "1.1 google" and headers["Retry-After"] == "1"
        assert headers["X-RateLimit-Remaining"] == "0"
    status, _, _ = await rest("GET", "/users/@me")
    assert status == 200
    assert [c.status for c in server.driver.rest_calls(route="/users/@me")] == [429, 429, 200]


async def test_interaction_callbacks_follow_discord_rules(
    server: SandboxServer, rest: Rest
) -> None:
    app = server.world.application_id
    command = {
        "name": "ping",
        "description": "Ping",
        "options": [{"name": "times", "type": 4, "description": "n", "required": True}],
    }
    status, synced, _ = await rest("PUT", f"/applications/{app}/commands", [command])
    assert status == 200 and synced[0]["id"].isdigit()
    status, again, _ = await rest("PUT", f"/applications/{app}/commands", [command])
    assert again[0]["id"] == synced[0]["id"]
    with pytest.raises(ValueError, match="required"):
        await server.driver.slash("Demo", "general", "alice", "ping")
    handle = await server.driver.slash("Demo", "general", "alice", "ping", times="3")
    data = handle.record.payload["data"]
    assert data["options"] == [{"name": "times", "type": 4, "value": 3}]
    callback = f"/interactions/{handle.id}/{handle.record.token}/callback"
    status, body, _ = await rest(
        "POST", callback, {"type": 4, "data": {"content": "pong"}}, with_response="1"
    )
    assert status == 200 and body["resource"]["message"]["content"] == "pong"
    assert body["interaction"]["response_message_id"] == body["resource"]["message"]["id"]
    status, body, _ = await rest("POST", callback, {"type": 4, "data": {"content": "again"}})
    assert (status, body["code"]) == (400, 40060)
    status, body, _ = await rest(
        "POST", f"/webhooks/{app}/{handle.record.token}", {"content": "more", "flags": 64}, wait="1"
    )
    assert status == 200 and body["flags"] == 64
    follow = await handle.wait_followup(0, timeout=1)
    assert follow.ephemeral and follow.content == "more"
    assert (await handle.wait_response(timeout=1)).content == "pong"


async def test_driver_refuses_what_discord_would_refuse(server: SandboxServer) -> None:
    with pytest.raises(SandboxError) as caught:
        await server.driver.send_message("Demo", "announcements", "alice", "hello")
    assert caught.value.code == 50013
    with pytest.raises(SandboxError):
        await server.driver.kick("Demo", "alice", "bob")
    with pytest.raises(LookupError):
        await server.driver.slash("Demo", "general", "alice", "nope")


async def test_remote_driver_maps_errors_back(server: SandboxServer) -> None:
    async with RemoteDriver(server.url) as remote:
        assert (await remote.info())["guilds"] == 1
        sent = await remote.send_message("Demo", "general", "alice", "hello")
        assert (
            sent.content == "hello" and sent.author_id == server.driver.member("Demo", "alice").id
        )
        with pytest.raises(LookupError, match="no member"):
            await remote.send_message("Demo", "general", "nobody", "hi")
        with pytest.raises(SandboxError) as caught:
            await remote.send_message("Demo", "announcements", "alice", "hi")
        assert caught.value.code == 50013
        with pytest.raises(SandboxTimeout, match="a reply to message"):
            await remote.wait_reply(sent, timeout=0.1)
        await remote.moderate("ban", "Demo", "moderator", "bob", reason="spam")
        assert server.world.guild("Demo").bans.keys() == {server.driver.user("bob").id}
        assert await remote.rest_calls() == []
        assert await remote.bot_messages("Demo", "general") == []


async def test_late_deliveries_carry_old_ids_and_miss_the_response_window(
    server: SandboxServer, rest: Rest
) -> None:
    """`sent_ago`: an interaction or message that reaches the bot late, as a replay after
    RESUME or a queue while the bot was away would (docs/sandbox.md)."""
    app = server.world.application_id
    command = {"name": "ping", "description": "Ping"}
    assert (await rest("PUT", f"/applications/{app}/commands", [command]))[0] == 200
    now = dt.datetime.now(dt.UTC)
    async with RemoteDriver(server.url) as remote:
        late = await remote.slash("Demo", "general", "alice", "ping", sent_ago=60)
        old = await remote.send_message("Demo", "general", "alice", "hello", sent_ago=60)
    handle = server.driver.interaction(late.id)
    shown = payloads.message(server.world, server.world.messages[old.id])["timestamp"]
    for made in (discord_time(handle.id), discord_time(old.id), dt.datetime.fromisoformat(shown)):
        assert 55 < (now - made).total_seconds() < 65
    callback = f"/interactions/{handle.id}/{handle.record.token}/callback"
    status, body, _ = await rest("POST", callback, {"type": 5})
    assert (status, body["code"]) == (404, 10062)  # past Discord's 3 s: unknown interaction
    fresh = await server.driver.send_message("Demo", "general", "alice", "later")
    channel = server.driver.channel("Demo", "general")
    assert channel.message_ids == sorted(channel.message_ids)  # the old one sorts by its id
    assert channel.message_ids.index(old.id) < channel.message_ids.index(fresh.id)


def discord_time(snowflake: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp_ms(snowflake) / 1000, dt.UTC)
