"""A growing bot: guilds it joins while it runs, their GUILD_CREATEs, and the shard limits."""

from __future__ import annotations

from typing import Any

import aiohttp
from sandbox_helpers import RawGateway, Rest, is_dispatch, make_server

from sandbox import RemoteDriver, SandboxServer, build_world
from sandbox.snowflake import shard_for

#: Every shard of two shard counts, run side by side: (shard id, shard count).
SHARDS = [(shard_id, count) for count in (2, 4) for shard_id in range(count)]


async def identified(
    server: SandboxServer, raw_clients: list[RawGateway], shard: tuple[int, int]
) -> dict[str, Any]:
    """A new client's first answer to an IDENTIFY as ``shard`` (READY, op 9 or the close)."""
    client = await RawGateway.connect(server)
    raw_clients.append(client)
    await client.recv()
    await client.identify(list(shard))
    return await client.recv()


def seqs(server: SandboxServer) -> dict[tuple[int, int], int]:
    """Each session's sequence number by (shard id, shard count)."""
    return {(s.shard_id, s.shard_count): s.seq for s in server.driver.sessions()}


async def guild_creates(client: RawGateway, among: set[int], count: int) -> list[int]:
    """The ids of the next ``count`` GUILD_CREATEs of guilds in ``among``."""
    received: list[int] = []
    while len(received) < count:
        frame = await client.until(
            lambda f: is_dispatch("GUILD_CREATE")(f) and int(f["d"]["id"]) in among
        )
        assert not frame.get("closed"), frame
        received.append(int(frame["d"]["id"]))
    return received


async def test_joined_guilds_reach_their_shard_in_every_shard_count(
    raw_clients: list[RawGateway],
) -> None:
    async with make_server(identify_window=0.0, max_concurrency=4) as server:
        for shard in SHARDS:
            assert (await identified(server, raw_clients, shard))["t"] == "READY"
        clients = dict(zip(SHARDS, raw_clients, strict=True))
        before = seqs(server)
        new: list[int] = []
        # Ids follow the clock: grow until the new guilds land on every shard of 4 (and of 2).
        while len({shard_for(g, 4) for g in new}) < 4:
            new += server.driver.add_guilds(5)
            assert len(new) < 100_000, "the world's ids never reached every shard"
        expected = {
            (shard_id, count): [g for g in new if shard_for(g, count) == shard_id]
            for shard_id, count in SHARDS
        }
        after = seqs(server)
        assert {s: after[s] - before[s] for s in SHARDS} == {
            s: len(ids) for s, ids in expected.items()
        }
        for shard, client in clients.items():
            assert await guild_creates(client, set(new), len(expected[shard])) == expected[shard]


async def test_gateway_bot_recommends_shards_for_the_current_world() -> None:
    world = build_world(1000, channels=1, roles=4, members=2, lazy=True)
    async with make_server(world) as server, aiohttp.ClientSession() as session:
        rest = Rest(server, session)
        recommended = []
        for grow in (0, 1, 1000):
            server.driver.add_guilds(grow)
            status, body, _ = await rest("GET", "/gateway/bot")
            assert status == 200
            recommended.append(body["shards"])
        assert recommended == [1, 2, 3]


async def test_a_shard_grown_past_the_limit_is_refused_with_4011(
    raw_clients: list[RawGateway],
) -> None:
    async with make_server(identify_window=0.0) as server:
        server.driver.set_max_guilds_per_shard(1)
        assert (await identified(server, raw_clients, (0, 1)))["t"] == "READY"
        server.driver.add_guilds(1)
        refused = await identified(server, raw_clients, (0, 1))
        assert refused == {"closed": True, "code": 4011}
        server.driver.set_max_guilds_per_shard(2)
        assert (await identified(server, raw_clients, (0, 1)))["t"] == "READY"
        records = [(r.accepted, r.reason) for r in server.driver.identifies()]
        assert records == [(True, ""), (False, "sharding required"), (True, "")]


async def test_growth_through_the_control_api(
    server: SandboxServer, raw_clients: list[RawGateway]
) -> None:
    assert (await identified(server, raw_clients, (0, 1)))["t"] == "READY"
    async with RemoteDriver(server.url) as remote:
        ids = await remote.add_guilds(2, "web")
        assert [server.world.guilds[g].name for g in ids] == ["web 2", "web 3"]
        assert await guild_creates(raw_clients[0], set(ids), 2) == ids
        detail = await remote.guild(ids[0])
        assert [c["name"] for c in detail["channels"]] == ["general"]
        assert {m["username"] for m in detail["members"]} == {"web_owner_2", "GuildBot"}
        [session] = server.driver.sessions()
        holders = await remote.shard_holders_by_count()
        assert holders == server.driver.shard_holders_by_count() == {1: {0: [session.id]}}
        await remote.set_max_guilds_per_shard(7)
        assert server.settings.max_guilds_per_shard == 7
