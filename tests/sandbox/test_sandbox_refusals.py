"""What Discord refuses at IDENTIFY (close codes, op 9), and a slow or late gateway on demand."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sandbox_helpers import RawGateway, make_server

from sandbox import SandboxServer, build_world
from sandbox.intents import GUILD_MESSAGES, GUILDS, MESSAGE_CONTENT

BASIC = GUILDS | GUILD_MESSAGES


async def first_answer(
    server: SandboxServer,
    raw_clients: list[RawGateway],
    shard: list[int],
    intents: int = BASIC,
    version: str = "10",
) -> dict[str, Any]:
    """Identify as `shard`; the first frame after HELLO (or the close)."""
    client = await RawGateway.connect(server, version=version)
    raw_clients.append(client)
    await client.recv()
    await client.identify(shard, intents=intents)
    return await client.recv()


@pytest.mark.parametrize(
    ("settings", "shard", "intents", "version", "code", "reason"),
    [
        ({}, [0, 1], BASIC, "6", 4012, "invalid API version"),
        ({}, [0, 1], 1 << 30, "10", 4013, "invalid intents"),
        ({"privileged_intents": 0}, [0, 1], BASIC | MESSAGE_CONTENT, "10", 4014, "disallowed"),
        ({"shard_count_multiple": 4}, [0, 2], BASIC, "10", 4010, "invalid shard"),
        ({"max_guilds_per_shard": 1}, [0, 1], BASIC, "10", 4011, "sharding required"),
    ],
)
async def test_identify_refusals_close_with_discords_codes(
    raw_clients: list[RawGateway],
    settings: dict[str, int],
    shard: list[int],
    intents: int,
    version: str,
    code: int,
    reason: str,
) -> None:
    async with make_server(build_world(2, 2, 2, 3, seed=1), **settings) as server:
        assert await first_answer(server, raw_clients, shard, intents, version) == {
            "closed": True,
            "code": code,
        }
        [record] = server.driver.identifies()
        assert not record.accepted and reason in record.reason
        assert server.driver.sessions() == []


async def test_granted_privileged_intents_are_accepted(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    ready = await first_answer(server, raw_clients, [0, 1], BASIC | MESSAGE_CONTENT)
    assert ready["t"] == "READY"


async def test_an_identify_spent_elsewhere_gets_op_9_until_the_window_passed(
    raw_clients: list[RawGateway],
) -> None:
    async with make_server(identify_window=0.5) as server:
        server.spend_identify(0)
        assert await first_answer(server, raw_clients, [0, 1]) == {
            "op": 9,
            "d": False,
            "s": None,
            "t": None,
        }
        await asyncio.sleep(0.5)  # Discord's identify window itself
        assert (await first_answer(server, raw_clients, [0, 1]))["t"] == "READY"
        assert [r.accepted for r in server.driver.identifies()] == [False, True]


async def test_ready_and_guild_creates_can_come_slowly(raw_clients: list[RawGateway]) -> None:
    world = build_world(2, 2, 2, 3, seed=1)
    async with make_server(world, ready_delay=0.3, guild_create_interval=0.2) as server:
        client = await RawGateway.connect(server)
        raw_clients.append(client)
        await client.recv()
        sent = time.monotonic()
        await client.identify([0, 1])
        seen: list[tuple[str, float]] = []
        while len(seen) < 3:
            frame = await client.recv()
            seen.append((frame["t"], time.monotonic() - sent))
        assert [name for name, _ in seen] == ["READY", "GUILD_CREATE", "GUILD_CREATE"]
        assert seen[0][1] >= 0.3 and seen[1][1] - seen[0][1] >= 0.18
        assert seen[2][1] - seen[1][1] >= 0.18


async def test_a_delayed_resume_replays_late(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    client = await RawGateway.connect(server)
    raw_clients.append(client)
    await client.recv()
    await client.identify([0, 1], intents=BASIC | MESSAGE_CONTENT)
    await client.until(lambda f: f.get("t") == "READY")
    session = server.driver.sessions()[0]
    seq = session.seq
    await client.ws.close(code=4000)
    await server.driver.wait_until(
        lambda: True if not server.gateway.connections else None, 5, "the socket closed"
    )
    guild = next(iter(server.world.guilds.values()))
    await server.driver.send_message(guild, "general", "alice", "while away")
    server.delay_resumes(0.4)
    resumer = await RawGateway.connect(server)
    raw_clients.append(resumer)
    await resumer.recv()
    asked = time.monotonic()
    await resumer.send(6, {"token": "t", "session_id": session.id, "seq": seq})
    replayed = await resumer.until(lambda f: f.get("t") == "MESSAGE_CREATE")
    assert time.monotonic() - asked >= 0.4
    assert replayed["d"]["content"] == "while away"
    assert (await resumer.until(lambda f: f.get("t") == "RESUMED"))["t"] == "RESUMED"
