"""Generated worlds: 10,000 guilds in seconds, and lazy guilds identical to eager ones."""

from __future__ import annotations

import time
from typing import Any

from sandbox_helpers import RawGateway, is_dispatch, make_server
from tiny_bot import start_bot

from sandbox import build_world
from sandbox.intents import GUILD_MEMBERS, GUILDS
from sandbox.lazy_world import GuildTable
from sandbox.snowflake import shard_for
from sandbox.world import World

SHARDS = 4


def built(world: World) -> set[int]:
    guilds = world.guilds
    assert isinstance(guilds, GuildTable)
    return {g for g in guilds if guilds.is_built(g)}


def test_ten_thousand_realistic_guilds_build_in_seconds() -> None:
    started = time.perf_counter()
    world = build_world(10_000, 50, 30, 100, seed=1, shard_count=SHARDS, lazy=True)
    assert time.perf_counter() - started < 5.0
    assert len(world.guilds) == 10_000 and not built(world)
    per_shard = [0] * SHARDS
    for guild_id in world.guilds:
        per_shard[shard_for(guild_id, SHARDS)] += 1
    assert per_shard == [2_500] * SHARDS
    last = list(world.guilds)[-1]
    guild = world.guilds[last]
    assert (len(guild.channel_ids), len(guild.roles), len(guild.members)) == (50, 30, 100)
    assert built(world) == {last}


async def guild_creates(world: World, shard_id: int) -> list[dict[str, Any]]:
    """Every GUILD_CREATE a raw client identifying on ``shard_id`` receives, members included."""
    server = make_server(world)
    await server.start()
    client = await RawGateway.connect(server)
    try:
        await client.recv()
        await client.identify([shard_id, SHARDS], intents=GUILDS | GUILD_MEMBERS)
        expected = sum(1 for g in world.guilds if shard_for(g, SHARDS) == shard_id)
        return [(await client.until(is_dispatch("GUILD_CREATE")))["d"] for _ in range(expected)]
    finally:
        await client.close()
        await server.stop()


async def test_a_lazy_guild_is_sent_exactly_like_the_eager_one() -> None:
    eager = build_world(40, 12, 8, 20, seed=5, shard_count=SHARDS)
    lazy = build_world(40, 12, 8, 20, seed=5, shard_count=SHARDS, lazy=True)
    assert list(lazy.guilds) == list(eager.guilds)
    # Build out of order: the last guild first, through one of its channels.
    last = eager.guilds[list(eager.guilds)[-1]]
    assert lazy.channels[last.channel_ids[3]].name == eager.channels[last.channel_ids[3]].name
    assert built(lazy) == {last.id}
    sent = await guild_creates(lazy, 1)
    shard_one = {g for g in lazy.guilds if shard_for(g, SHARDS) == 1}
    assert built(lazy) == shard_one | {last.id}
    assert len(sent) == 10 and all(len(p["members"]) == 20 for p in sent)
    assert sent == await guild_creates(eager, 1)


async def test_a_discord_py_bot_answers_in_a_lazy_world() -> None:
    world = build_world(200, 20, 10, 30, seed=2, shard_count=2, lazy=True)
    server = make_server(world)
    await server.start()
    try:
        bot = await start_bot(server.rest_base, server.gateway_url, shard_count=2)
        try:
            guild = world.guilds[list(world.guilds)[-1]]
            author = next(m for m in guild.members.values() if not m.user.bot)
            sent = await server.driver.send_message(guild.id, "general", author.id, "ping")
            assert (await server.driver.wait_reply(sent)).content.startswith("pong")
            assert bot.get_guild(guild.id) is not None and len(bot.guilds) == 200
        finally:
            await bot.close()
    finally:
        await server.stop()
