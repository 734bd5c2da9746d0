"""Gateway behaviour against raw websocket clients and an unmodified discord.py bot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import discord.gateway
import pytest
from sandbox_helpers import FakeClock, RawGateway, is_dispatch, make_server, output_line, process
from tiny_bot import TinyBot, start_bot

from sandbox import SandboxServer, build_world
from sandbox.intents import GUILD_MESSAGES, GUILDS
from sandbox.records import IdentifyRecord


async def test_identify_limit_rejects_the_fast_and_accepts_the_patient(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    clock = FakeClock()
    server.gateway.limiter.clock = clock
    first = await RawGateway.connect(server)
    fast = await RawGateway.connect(server)
    patient = await RawGateway.connect(server)
    raw_clients += [first, fast, patient]
    for client in (first, fast, patient):
        hello = await client.recv()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
    await first.identify([0, 2])
    assert (await first.until(is_dispatch("READY")))["d"]["shard"] == [0, 2]
    await fast.identify([1, 2])
    rejected = await fast.until(lambda f: f.get("op") == 9)
    assert rejected["d"] is False
    clock.now += server.settings.identify_window
    await patient.identify([1, 2])
    assert (await patient.until(is_dispatch("READY")))["d"]["shard"] == [1, 2]
    log = [(r.shard_id, r.accepted) for r in server.driver.identifies()]
    assert log == [(0, True), (1, False), (1, True)]
    assert server.driver.shard_holders().keys() == {0, 1}
    assert server.gateway.start_limit_remaining == server.settings.session_start_total - 2


async def test_two_sessions_on_one_shard_are_flagged(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    clock = FakeClock()
    server.gateway.limiter.clock = clock
    for _ in range(2):
        client = await RawGateway.connect(server)
        raw_clients.append(client)
        await client.recv()
        await client.identify([0, 1])
        await client.until(is_dispatch("READY"))
        clock.now += server.settings.identify_window
    holders = server.driver.shard_holders()
    duplicates = server.driver.duplicate_shard_holders()
    assert len(holders[0]) == 2
    assert [(d.shard_id, sorted(d.session_ids)) for d in duplicates] == [(0, sorted(holders[0]))]


async def test_invalid_shard_closes_4010(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    client = await RawGateway.connect(server)
    raw_clients.append(client)
    await client.recv()
    await client.identify([5, 2])
    closed = await client.until(lambda f: False)
    assert closed == {"closed": True, "code": 4010}


@pytest.mark.parametrize("compress", [True, False])
async def test_zlib_stream_and_plain_frames(compress: bool, raw_clients: list[RawGateway]) -> None:
    server = make_server(compress=compress)
    await server.start()
    try:
        client = await RawGateway.connect(server, compress=True)
        raw_clients.append(client)
        assert (await client.recv())["op"] == 10
        await client.identify([0, 1])
        guild_create = await client.until(is_dispatch("GUILD_CREATE"))
        assert guild_create["d"]["name"] == "Demo"
        assert (client.binary_frames > 0) is compress
        bot = await start_bot(server.rest_base, server.gateway_url)
        try:
            assert all(s.compressed is compress for s in server.driver.sessions())
            sent = await server.driver.send_message("Demo", "general", "alice", "ping")
            assert (await server.driver.wait_reply(sent)).content.startswith("pong")
        finally:
            await bot.close()
    finally:
        await server.stop()


async def test_message_content_intent_and_guild_members_chunk(
    raw_clients: list[RawGateway],
) -> None:
    server = make_server(world=build_world(1, channels=12, roles=4, members=300, seed=3))
    await server.start()
    try:
        client = await RawGateway.connect(server)
        raw_clients.append(client)
        await client.recv()
        await client.identify([0, 1], intents=GUILDS | GUILD_MESSAGES)
        created = (await client.until(is_dispatch("GUILD_CREATE")))["d"]
        assert created["member_count"] == 300 and len(created["members"]) == 1
        guild = server.world.guild(int(created["id"]))
        author = next(m for m in guild.members.values() if m.id != server.world.bot.id)
        await server.driver.send_message(guild, "general", author, "hidden words")
        plain = (await client.until(is_dispatch("MESSAGE_CREATE")))["d"]
        await server.driver.send_message(guild, "general", author, f"<@{server.world.bot.id}> hi")
        mention = (await client.until(is_dispatch("MESSAGE_CREATE")))["d"]
        assert plain["content"] == "" and mention["content"].endswith("hi")
        bot = await start_bot(server.rest_base, server.gateway_url)
        try:
            chunked = bot.get_guild(guild.id)
            assert chunked is not None and chunked.chunked and len(chunked.members) == 300
            kinds = sorted(type(c).__name__ for c in chunked.channels)
            assert kinds == ["CategoryChannel"] * 2 + ["TextChannel"] * 8 + ["VoiceChannel"] * 2
        finally:
            await bot.close()
    finally:
        await server.stop()


async def ping_all(server: SandboxServer, count: int) -> list[int]:
    """Send ``count`` pings (without waiting) and return their ids."""
    return [
        (await server.driver.send_message("Demo", "general", "alice", "ping")).id
        for _ in range(count)
    ]


async def assert_each_answered_once(server: SandboxServer, message_ids: list[int]) -> None:
    """Every message gets a reply; a final sentinel proves no late duplicates are queued."""
    for message_id in message_ids:
        await server.driver.wait_reply(message_id, timeout=10)
    sentinel = (await server.driver.send_message("Demo", "general", "alice", "ping")).id
    await server.driver.wait_reply(sentinel, timeout=10)
    replies = [m.reference_id for m in server.driver.bot_messages("Demo", "general")]
    for message_id in [*message_ids, sentinel]:
        assert replies.count(message_id) == 1


async def test_reconnect_resumes_without_losing_or_duplicating(
    server: SandboxServer, bot: TinyBot
) -> None:
    identifies = len(server.driver.identifies())
    resumed = asyncio.ensure_future(bot.wait_for("shard_resumed", timeout=10))
    assert server.send_reconnect(0) == 1
    sent = await ping_all(server, 5)
    assert await resumed == 0
    await assert_each_answered_once(server, sent)
    assert len(server.driver.identifies()) == identifies
    assert [(s.resumes, s.replayed) for s in server.driver.sessions()] == [(1, 5)]


async def test_dropped_connection_resumes(server: SandboxServer, bot: TinyBot) -> None:
    resumed = asyncio.ensure_future(bot.wait_for("shard_resumed", timeout=10))
    assert server.drop_connection(0) == 1
    sent = await ping_all(server, 3)
    assert await resumed == 0
    await assert_each_answered_once(server, sent)
    assert len(server.driver.identifies()) == 1
    assert [(s.resumes, s.replayed) for s in server.driver.sessions()] == [(1, 3)]


async def test_invalid_session_makes_the_client_identify_again(
    server: SandboxServer, bot: TinyBot
) -> None:
    before = server.driver.sessions()[0].id
    assert server.send_invalid_session(0) == 1

    def new_identify() -> list[IdentifyRecord] | None:
        accepted = [r for r in server.driver.identifies() if r.accepted]
        return accepted if len(accepted) == 2 else None

    accepted = await server.driver.wait_until(new_identify, 10, "a second IDENTIFY")
    assert accepted[-1].session_id != before
    await assert_each_answered_once(server, await ping_all(server, 1))


async def test_rate_limited_send_is_retried_once(server: SandboxServer, bot: TinyBot) -> None:
    server.rate_limit_next("POST /channels/{channel_id}/messages", count=1, retry_after=0.2)
    sent = await server.driver.send_message("Demo", "general", "alice", "ping")
    await assert_each_answered_once(server, [sent.id])
    statuses = [
        c.status for c in server.driver.rest_calls("POST", "/channels/{channel_id}/messages")
    ]
    assert statuses == [429, 200, 200]


async def test_bot_hits_hierarchy_and_closed_dms(server: SandboxServer, bot: TinyBot) -> None:
    sent = await server.driver.send_message(
        "Demo", "general", "alice", f"!kick <@{server.driver.member('Demo', 'moderator').id}>"
    )
    reply = await server.driver.wait_reply(sent)
    assert "50013" in reply.content and reply.content.startswith("❌")
    assert server.driver.rest_calls("DELETE", status=403)[0].error_code == 50013
    server.driver.set_dms_closed("bob")
    handle = await server.driver.slash("Demo", "general", "alice", "dm", member="bob", text="hi")
    response = await handle.wait_response()
    assert response.ephemeral and "Cannot DM bob (50007)" in response.content
    assert server.driver.dms("bob") == []


async def test_human_moderation_reaches_the_bot(server: SandboxServer, bot: TinyBot) -> None:
    entries = [asyncio.ensure_future(bot.wait_for("audit_log_entry_create", timeout=5))]
    await server.driver.ban("Demo", "moderator", "carol", reason="spam")
    await entries[0]
    entries.append(asyncio.ensure_future(bot.wait_for("audit_log_entry_create", timeout=5)))
    await server.driver.timeout("Demo", "moderator", "bob", 600, reason="cool down")
    seen = [await entry for entry in entries]
    moderator = server.driver.member("Demo", "moderator").id
    assert [(e.action.name, e.user_id) for e in seen] == [
        ("ban", moderator),
        ("member_update", moderator),
    ]
    assert seen[1].changes.after.timed_out_until is not None
    guild = bot.get_guild(server.world.guild("Demo").id)
    assert guild is not None and guild.get_member(server.driver.user("carol").id) is None

    def modlog_posts() -> list[Any] | None:
        posts = server.driver.bot_messages("Demo", "modlog")
        return posts if len(posts) == 2 else None

    posts = await server.driver.wait_until(modlog_posts, 5, "two modlog posts")
    assert "ban" in posts[0].content


async def test_files_modals_dms_and_joins(server: SandboxServer, bot: TinyBot) -> None:
    driver = server.driver
    sent = await driver.send_message("Demo", "general", "alice", "!file notes.txt hello file")
    reply = await driver.wait_reply(sent)
    assert [(a.filename, a.size) for a in reply.attachments] == [("notes.txt", 10)]
    assert driver.attachment_bytes(reply.attachments[0]) == b"hello file"
    carol = driver.member("Demo", "carol").id
    await driver.send_message("Demo", "general", "alice", f"!warn <@{carol}> flooding")
    assert "flooding" in (await driver.wait_dm("carol")).content
    modal = await (await driver.slash("Demo", "general", "bob", "feedback")).wait_response()
    assert modal.kind == "modal" and modal.raw["title"] == "Feedback"
    assert modal.raw["components"][0]["components"][0]["custom_id"] == "tiny:feedback"
    in_dm = await (await driver.slash(None, None, "bob", "balance")).wait_response()
    assert in_dm.guild_id is None and "Bob has 100 coins" in in_dm.text()
    join = asyncio.ensure_future(bot.wait_for("member_join", timeout=5))
    dave = await driver.add_member("Demo", "dave", roles=["Member"])
    joined = await join
    assert joined.id == dave.id and [r.name for r in joined.roles] == ["@everyone", "Member"]
    assert joined.guild.get_member(dave.id) is joined


async def test_close_1000_ends_the_session_and_4000_keeps_it(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    clock = FakeClock()
    server.gateway.limiter.clock = clock
    for shard, code in ((0, 1000), (1, 4000)):
        client = await RawGateway.connect(server)
        raw_clients.append(client)
        await client.recv()
        await client.identify([shard, 2])
        await client.until(is_dispatch("READY"))
        await client.ws.close(code=code)
        clock.now += server.settings.identify_window

    def settled() -> list[tuple[int, bool]] | None:
        sessions = server.driver.sessions()
        return (
            [(s.shard_id, s.connected) for s in sessions]
            if not server.gateway.connections
            else None
        )

    assert await server.driver.wait_until(settled, 5, "both sockets closed") == [(1, False)]
    resumer = await RawGateway.connect(server)
    raw_clients.append(resumer)
    await resumer.recv()
    session = server.driver.sessions()[0]
    await resumer.send(6, {"token": "t", "session_id": session.id, "seq": session.seq})
    assert (await resumer.until(lambda f: f.get("t") == "RESUMED"))["t"] == "RESUMED"
    stranger = await RawGateway.connect(server)
    raw_clients.append(stranger)
    await stranger.recv()
    await stranger.send(6, {"token": "t", "session_id": "nope", "seq": 1})
    assert (await stranger.until(lambda f: f.get("op") == 9))["d"] is False


async def test_heartbeats_are_acknowledged_after_a_round_trip(
    raw_clients: list[RawGateway],
) -> None:
    server = make_server(heartbeat_ack_delay=0.05)
    async with server:
        client = await RawGateway.connect(server)
        raw_clients.append(client)
        await client.recv()  # HELLO
        sent = time.monotonic()
        await client.send(1, None)
        ack = await client.until(lambda frame: frame.get("op") == 11)
        assert time.monotonic() - sent >= 0.05
        assert ack["d"] is None and server.gateway.heartbeats_acked == 1


def discord_keep_alive() -> type:
    """discord.py's own keep-alive class, even if a bot in this process replaced it."""
    cls: type = discord.gateway.KeepAliveHandler
    while cls.__module__ != "discord.gateway":
        cls = cls.__base__  # type: ignore[assignment]  # up to the class that defines it
    return cls


@pytest.mark.slow
async def test_unmodified_discord_py_reads_the_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a sandbox in another process (where an instant ACK made discord.py measure from
    the previous heartbeat, one interval earlier), every latency sample is the round trip."""
    monkeypatch.setattr(discord.gateway, "KeepAliveHandler", discord_keep_alive())
    interval, wanted = 1.0, 5  # long enough that a loaded machine stays well under interval / 2
    serve = ("-m", "sandbox", "serve", "--heartbeat-interval", str(int(interval * 1000)))
    async with process(*serve, "--identify-window", "0.01") as sandbox:
        url = (await output_line(sandbox, "sandbox listening on")).split()[-1]
        samples: list[float] = []
        enough = asyncio.Event()
        bot = await start_bot(url + "/api/v10", "ws" + url[4:] + "/", enable_debug_events=True)

        async def on_socket_raw_receive(text: str) -> None:
            if '"op": 11' in text:  # read after discord.py handled the ACK
                samples.append(bot.latency)
                if len(samples) >= wanted:
                    enough.set()

        bot.add_listener(on_socket_raw_receive)
        try:
            await asyncio.wait_for(enough.wait(), 30)
        finally:
            await bot.close()
    # The ACK waits 30 ms; timers on two processes may disagree by a few ms.
    assert all(0.02 <= s < interval / 2 for s in samples[:wanted]), samples


async def test_failure_switch_and_redelivery(server: SandboxServer, bot: TinyBot) -> None:
    server.fail_next("POST /channels/{channel_id}/messages", count=1, status=503)
    sent = await server.driver.send_message("Demo", "general", "alice", "ping")

    def statuses() -> list[int]:
        return [
            c.status for c in server.driver.rest_calls("POST", "/channels/{channel_id}/messages")
        ]

    await server.driver.wait_until(lambda: statuses() or None, 5, "the bot's attempt")
    assert statuses() == [503]  # discord.py does not retry a 503: the reply is lost
    server.driver.redeliver(sent)  # as a RESUME replay would
    reply = await server.driver.wait_reply(sent)
    assert reply.content.startswith("pong") and statuses() == [503, 200]
    handle = await server.driver.slash("Demo", "general", "alice", "roll", sides=6)
    await handle.wait_followup(0)
    server.driver.redeliver(handle)
    await server.driver.wait_until(
        lambda: server.driver.rest_calls(status=400) or None, 5, "the second callback"
    )
    assert server.driver.rest_calls(status=400)[0].error_code == 40060
