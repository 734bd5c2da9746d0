"""The bot as separate processes: guilds on different shards in different processes, and a
tempban that expires while its process restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.db.models import Case, CaseEdit, Member
from app.domain.types import CaseState
from sandbox import SandboxServer
from tests.bot.cluster import pod, publish
from tests.bot.harness import Harness
from tests.bot.world import community_world

pytestmark = pytest.mark.slow
BAN_ROUTE = "/guilds/{guild_id}/bans/{user_id}"


def small_sandbox(*shards: tuple[int, int]) -> SandboxServer:
    """A sandbox of community guilds of 4 members (on these (shard, shard count) places)."""
    world = community_world(list(shards) or None, members=4)
    return SandboxServer(world=world, identify_window=0.05, interaction_deadline=10)


@pytest.fixture
async def two_shard_sandbox(pg: object) -> AsyncIterator[SandboxServer]:
    async with small_sandbox((0, 2), (1, 2)) as server:
        yield server


@pytest.fixture
async def one_shard_sandbox(pg: object) -> AsyncIterator[SandboxServer]:
    async with small_sandbox() as server:
        yield server


async def test_guilds_on_other_shards_in_other_processes_share_nothing(
    two_shard_sandbox: SandboxServer, pg_url: str, redis_server_url: str, tmp_path: Path
) -> None:
    server = two_shard_sandbox
    await publish(server, pg_url)
    procs = [
        pod(
            f"shard-{shard}",
            server,
            pg_url,
            redis_server_url,
            tmp_path,
            SHARD_COUNT="2",
            SHARD_IDS=f"[{shard}]",
        )
        for shard in (0, 1)
    ]
    try:
        for proc in procs:
            await proc.start()
        for shard, proc in enumerate(procs):
            await proc.wait_log(f"shard {shard} ready")
        holders = server.driver.shard_holders()
        assert len(holders[0]) == len(holders[1]) == 1 and holders[0] != holders[1]
        a, b = (
            Harness(server, None, g)
            for g in sorted(server.world.guilds.values(), key=lambda g: (g.id >> 22) % 2)
        )
        assert (await a.slash("m1", "daily")).content.startswith("You claimed 100 coins")
        assert (await b.slash("m1", "balance")).content == "You hold 0 coins."
        assert (await b.slash("admin", "give", member="m1", amount=50)).content.startswith("Gave")
        assert (await a.slash("m1", "balance")).content == "You hold 100 coins."
        assert (await a.slash("mod", "warn", member="m2", reason="in A")).content.startswith(
            "Case #1: Warning"
        )
        assert (await b.slash("mod", "warn", member="m2", reason="in B")).content.startswith(
            "Case #1: Warning"
        )
        page = await b.slash("mod", "modlog", member="m2")
        assert page.embeds[0]["description"].count("`#") == 1
        board = await a.slash("m1", "leaderboard")
        assert board.embeds[0]["description"].count("\n") == 0  # only m1 holds coins in A
        m1 = a.id_of("m1")
        rows = {r.guild_id: r.coins for r in await Member.filter(user_id=m1)}
        assert rows == {a.guild.id: 100, b.guild.id: 50}
        reasons = {c.guild_id: c.reason for c in await Case.all()}
        assert reasons == {a.guild.id: "in A", b.guild.id: "in B"}
        await b.slash("mod", "ban", user="m3", duration="1s", reason="short")
        await b.wait(
            lambda: True if b.id_of("m3") not in b.driver.guild(b.guild).bans else None,
            "the tempban in B to end",
            within=15,
        )
        await procs[1].wait_log(f"case 2 of guild {b.guild.id} ended")
        assert not procs[0].logged("ended")
        for proc in procs:
            assert await proc.stop() == 0, proc.log()
            assert proc.logged("services closed"), proc.log()
    finally:
        for proc in procs:
            await proc.kill()


async def test_tempban_expires_once_across_a_restart(
    one_shard_sandbox: SandboxServer, pg_url: str, redis_server_url: str, tmp_path: Path
) -> None:
    """The first process runs on asyncio's own event loop, the second on uvloop (the default)."""
    server = one_shard_sandbox
    await publish(server, pg_url)
    first = pod("first", server, pg_url, redis_server_url, tmp_path, EVENT_LOOP="asyncio")
    second = pod("second", server, pg_url, redis_server_url, tmp_path)
    try:
        await first.start()
        await first.wait_log("shard 0 ready")
        assert first.logged("event loop: asyncio"), first.log()
        h = Harness(server, None, next(iter(server.world.guilds.values())))
        reply = await h.slash("mod", "ban", user="m1", duration="2s", reason="cool down")
        assert reply.content.startswith("Case #1: Temporary ban (2s)")
        assert await first.stop() == 0, first.log()
        stopped = datetime.now(UTC)
        case = await Case.get(guild_id=h.guild.id, number=1)
        assert case.expires_at is not None and stopped < case.expires_at, "restart too slow"
        assert h.id_of("m1") in h.driver.guild(h.guild).bans
        await second.start()
        await h.wait(
            lambda: True if h.id_of("m1") not in h.driver.guild(h.guild).bans else None,
            "the tempban to be lifted by the new process",
            within=30,
        )
        await second.wait_log("case 1 of guild")
        assert second.logged("event loop: uvloop"), second.log()
        case = await Case.get(id=case.id)
        assert case.state == CaseState.EXPIRED
        assert [e.note for e in await CaseEdit.filter(case_id=case.id)] == ["expired"]
        assert len(h.driver.rest_calls("DELETE", route=BAN_ROUTE)) == 1
        assert await second.stop() == 0, second.log()
    finally:
        await first.kill()
        await second.kill()
