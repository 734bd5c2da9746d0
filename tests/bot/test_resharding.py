"""Resharding with no downtime: 4 -> 8 -> 4 shards over three pods, with traffic throughout.

Members send slash and prefix transfers and balances, chat (XP) and moderators warn, in every
guild, while `python -m app reshard` brings a new shard count up beside the running one and the
pods switch to it. Every command is answered once, every effect is in the database once (the
ledger, each member's XP, the cases), and every 50 ms the sampler checks that each guild has a
connected session of the generation that acts at that moment.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as redis

from app.coord.assignment import ranks
from app.coord.generations import KEY, Generation, Record, State
from app.coord.shard_plan import shard_for_guild
from app.db.models import Case, GuildSettings, Member
from sandbox import SandboxServer
from tests.bot.cluster import Cluster
from tests.bot.traffic import NAMES, CommandStream, traffic_sandbox
from tests.conftest import Backend
from testsupport.serving import ServingSampler
from testsupport.waiting import wait_for

pytestmark = pytest.mark.slow

OLD, NEW = 4, 8
POD_ENV = {
    "SHARD_COUNT": str(OLD),
    "IDENTIFY_WINDOW_S": "0.3",
    "LEASE_TTL_S": "2",
    "REBALANCE_GRACE_S": "4",
    "RESHARD_DRAIN_S": "1",
}


@pytest.fixture
async def sandbox(pg: Backend) -> AsyncIterator[SandboxServer]:
    server = await traffic_sandbox(pg, NEW)
    for guild in server.world.guilds:
        await pg.guilds.set_xp_range(guild, 1, 1)
    # No cooldown: every chat message earns exactly 1 XP, so a message acted on twice shows.
    await GuildSettings.all().update(xp_cooldown_s=0)
    yield server
    await server.stop()


@dataclass
class ChatAndModeration:
    """In every guild: members chat in #levels (one XP each), a moderator warns in #general
    (a prefix command), and an admin kicks newcomers by hand (an audit-log entry, a case)."""

    server: SandboxServer
    chats: dict[int, int] = field(default_factory=dict)
    warns: dict[int, int] = field(default_factory=dict)
    kicks: dict[int, int] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def cancel(self) -> None:
        """Stop at once, checking nothing (a test that failed already)."""
        for task in self._tasks:
            task.cancel()

    def start(self) -> None:
        for guild in self.server.world.guilds:
            for lane in (self._chat, self._warn, self._kick):
                self._tasks.append(asyncio.create_task(lane(guild)))

    async def _chat(self, guild: int) -> None:
        # The members in turn, each every 2 s: with no cooldown, a member's two messages
        # handled out of order (one by each generation, around the switch) would make the
        # later-committing one look too soon after the other, and earn nothing (by design).
        i = 0
        while not self._stop.is_set():
            await self.server.driver.send_message(guild, "levels", NAMES[i % len(NAMES)], "hi")
            self.chats[guild] = self.chats.get(guild, 0) + 1
            i += 1
            await asyncio.sleep(0.5)  # two chat messages a second per guild

    async def _warn(self, guild: int) -> None:
        target = f"<@{self.server.world.user('m1').id}>"
        i = 0
        while not self._stop.is_set():
            i += 1
            sent = await self.server.driver.send_message(
                guild, "general", "mod", f"!warn {target} traffic {i}"
            )
            reply = await self.server.driver.wait_reply(sent, timeout=40)
            assert reply.content.startswith("Case #"), reply.content
            self.warns[guild] = self.warns.get(guild, 0) + 1
            await asyncio.sleep(0.3)  # a moderator's pace

    async def _kick(self, guild: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            joiner = await self.server.driver.add_member(guild, f"joiner-{guild}-{i}")
            await self.server.driver.kick(guild, "admin", joiner.id, "traffic")
            self.kicks[guild] = self.kicks.get(guild, 0) + 1
            await asyncio.sleep(0.5)  # a kick every half second per guild

    async def _mismatches(self) -> dict[int, str]:
        """Per guild, how the database differs from what was done (empty: it does not)."""
        found: dict[int, str] = {}
        for guild in self.server.world.guilds:
            xp = sum(m.xp for m in await Member.filter(guild_id=guild))
            cases = await Case.filter(guild_id=guild).values_list("number", "action")
            numbers = sorted(n for n, _ in cases)
            kicks = sum(1 for _, action in cases if action == "kick")
            done = (self.chats.get(guild, 0), self.warns.get(guild, 0), self.kicks.get(guild, 0))
            if (xp, len(cases), kicks) != (done[0], done[1] + done[2], done[2]) or numbers != list(
                range(1, len(cases) + 1)
            ):
                found[guild] = (
                    f"shards {shard_for_guild(guild, OLD)}/{shard_for_guild(guild, NEW)}: "
                    f"xp {xp} of {done[0]} messages, {len(cases)} cases for {done[1]} warns and "
                    f"{done[2]} kicks ({kicks} kick cases), numbers {numbers[:3]}..."
                )
        return found

    async def finish(self) -> None:
        """Stop; each chat message earned its one XP, each warn and each kick its one case."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        try:  # the last XP and cases are written after the messages and entries land
            await wait_for(lambda: self._settled(), within=30)
        except AssertionError:
            raise AssertionError(f"acted on not exactly once: {await self._mismatches()}") from None

    async def _settled(self) -> bool:
        return not await self._mismatches()


async def _reshard(
    cluster: Cluster, to: int, client: redis.Redis, meanwhile: Awaitable[None] | None = None
) -> Record:
    """`reshard --to N`, then (`meanwhile`) what the operator does while it prepares; the
    record once N shards serve alone."""
    started = len([r for r in cluster.server.driver.identifies() if r.accepted])
    code, out = await cluster.command("reshard", "--to", str(to))
    assert code == 0, out
    assert f"{to} shards, preparing" in out, out
    if meanwhile is not None:
        await meanwhile
    record = await wait_for(
        lambda: _record(client, lambda r: _alone(r, to)), within=90, interval=0.1
    )
    accepted = [r for r in cluster.server.driver.identifies() if r.accepted][started:]
    assert [r.shard_count for r in accepted] == [to] * to  # identifies = the new count
    await wait_for(
        lambda: all(c == to for c, _ in _connected(cluster.server)) or None, within=30
    )  # the old generation's sessions ended
    assert _connected(cluster.server) == {(to, s) for s in range(to)}
    return record


def _connected(server: SandboxServer) -> set[tuple[int, int]]:
    return {(s.shard_count, s.shard_id) for s in server.driver.sessions() if s.connected}


async def test_four_to_eight_and_back_to_four_shards_with_traffic_throughout(
    cluster: Cluster, pg: Backend
) -> None:
    """2 pods at 4 shards; 4 -> 8 while a third pod joins; 8 -> 4 over the three."""
    client = pg.redis_client
    await cluster.start(0, 1)
    await cluster.wait_ready()
    sampler = ServingSampler(cluster.server, client)
    stream, chat = CommandStream(cluster.server), ChatAndModeration(cluster.server)
    try:
        sampler.start()
        stream.start()
        chat.start()
        up = await _reshard(cluster, NEW, client, cluster.start(2))  # a pod joins meanwhile
        assert [(g.number, g.state) for g in up.generations] == [
            (0, State.RETIRED),
            (1, State.ACTIVE),
        ]
        code, plan = await cluster.command("shard-plan", "--live")
        assert code == 0 and "generation 1: 8 shards, active" in plan, plan
        assert "generation 0: 4 shards, retired" in plan, plan
        down = await _reshard(cluster, OLD, client)
        assert down.active().number == 2
        # Redis loses the record (a restart with no persistence): the pods put it back rather
        # than fall back to generation 0 and end the sessions that serve
        await client.delete(KEY)
        restored = await wait_for(lambda: _record(client, lambda r: True), within=10)
        assert restored.fence >= down.fence and restored.active().number == 2
        await asyncio.sleep(1)  # traffic on the final generation too
        tally = await stream.finish()
        await chat.finish()
        gap = await sampler.stop()
        assert sampler.samples > 100
        assert gap < 1.0, sampler.longest  # no guild without an acting session beyond a blink
        rejected = [r for r in cluster.server.driver.identifies() if not r.accepted]
        assert rejected == []  # the identify rule held: no identify refused
        assert cluster.server.driver.duplicate_shard_holders() == []
        for index in cluster.pods:
            assert cluster.pods[index].errors() == [], cluster.pods[index].log()
            assert await cluster.http(index, "/readyz", ok_only=True) is not None
            exported = await cluster.http(index, "/metrics")
            assert exported is not None
            assert "guildbot_generation_active 2.0" in exported
            shard_up = [
                line for line in exported.splitlines() if line.startswith("guildbot_shard_up{")
            ]
            assert shard_up and all(line.endswith(" 1.0") for line in shard_up), shard_up
    except BaseException:
        stream.cancel()  # a failure above: stop the traffic, or the sandbox never stops
        chat.cancel()
        await sampler.stop()
        raise
    print(
        f"\n4 -> 8 (2 -> 3 pods meanwhile) -> 4 shards: {tally.line()}; "
        f"{sum(chat.chats.values())} chat messages, {sum(chat.warns.values())} warns, "
        f"{sum(chat.kicks.values())} kicks by hand; "
        f"longest time a guild had no session of the acting generation: {gap * 1000:.0f} ms"
    )


def _alone(record: Record, count: int) -> bool:
    """A generation of `count` shards acts alone (the one before it retired)."""
    return record.active().shard_count == count and len(record.live()) == 1


async def _record(client: redis.Redis, check: Callable[[Record], bool]) -> Record | None:
    raw = await client.get(KEY)
    record = Record.loads(raw) if raw else None
    return record if record is not None and check(record) else None


async def _abandoned(
    cluster: Cluster, pg: Backend, to: str, env: dict[str, str] | None = None
) -> Generation:
    """`reshard --to TO` (with `env`), then generation 1 once abandoned: generation 0 acts on,
    with no end set, and only its sessions remain connected."""
    code, out = await cluster.command("reshard", "--to", to, env=env)
    assert code == 0, out
    record = await wait_for(
        lambda: _record(pg.redis_client, lambda r: r.get(1).state is State.ABANDONED),  # type: ignore[union-attr]
        within=60,
    )
    assert record.active().number == 0 and record.active().acts_until is None
    await wait_for(lambda: all(c == OLD for c, _ in _connected(cluster.server)) or None, within=30)
    gen = record.get(1)
    assert gen is not None
    return gen


async def test_a_generation_refused_by_discord_is_abandoned_and_the_active_one_serves_on(
    cluster: Cluster, pg: Backend
) -> None:
    """4 -> 2 shards where Discord refuses a shard that large (4011): generation 1 is abandoned
    at its first refused identify, its other sessions end, and every command is answered."""
    await cluster.start(0, 1)
    await cluster.wait_ready()
    sampler = ServingSampler(cluster.server, pg.redis_client)
    stream = CommandStream(cluster.server)
    sampler.start()
    stream.start()
    cluster.server.driver.set_max_guilds_per_shard(2)  # 4 shards hold 2 guilds; 2 would hold 4
    gen = await _abandoned(cluster, pg, "2")
    # Seen once in CI: abandoned on five op 9s instead; the sandbox's records say why.
    assert "4011" in gen.reason, (gen, cluster.server.driver.identifies()[-8:])
    tally = await stream.finish()
    gap = await sampler.stop()
    assert gap == 0.0, sampler.longest  # the active generation never stopped
    assert all(p.running for p in cluster.pods.values())
    print(f"\nabandoned on 4011 ({gen.reason}): {tally.line()}")


async def test_a_reshard_the_session_budget_cannot_cover_is_refused_in_one_line(
    cluster: Cluster, pg: Backend
) -> None:
    remaining = 1_000 - len(cluster.server.driver.identifies())
    code, out = await cluster.command(
        "reshard", "--to", "8", env={"IDENTIFY_MIN_REMAINING": str(remaining - 7)}
    )
    assert code == 1, out
    assert out.strip().splitlines()[-1].startswith("refused: 8 identifies needed"), out
    assert await pg.redis_client.get(KEY) is None  # nothing written
    code, out = await cluster.command("reshard", "--to", "8x")
    assert code == 2 and "invalid int value" in out, out


async def test_a_growing_world_reshards_itself_when_asked_to(
    cluster: Cluster, pg: Backend, tmp_path: Path
) -> None:
    """RESHARD_AUTO: guilds join until a shard passes RESHARD_AT of 2,500 guilds (here 9), and
    the pods start, prepare and switch to a larger count by themselves. Before that, a
    SHARD_COUNT_FILE holding a typo changes nothing, and one holding 3 reshards to 3."""
    wanted = tmp_path / "shard_count"
    wanted.write_text("2\n")
    cluster.env.update(
        SHARD_COUNT="2",
        SHARD_COUNT_FILE=str(wanted),
        RESHARD_AUTO="true",
        RESHARD_AT=str(9 / 2_500),
    )
    await cluster.start(0, 1)
    await cluster.wait_ready()
    wanted.write_text("3x\n")
    await cluster.pods[0].wait_log("holds '3x', not a shard count", within=30)
    assert await pg.redis_client.get(KEY) is None
    wanted.write_text("3\n")
    await wait_for(
        lambda: _record(pg.redis_client, lambda r: _alone(r, 3)), within=60, interval=0.1
    )
    cluster.server.driver.add_guilds(24)  # 32 guilds: about 11 on each of 3 shards
    record = await wait_for(
        lambda: _record(
            pg.redis_client, lambda r: r.active().shard_count > 3 and len(r.live()) == 1
        ),
        within=90,
        interval=0.1,
    )
    # 32 guilds at 4.5 a shard would be 8; the pods decide on the counts they published last
    # (each every 5 s), so a first reshard may see fewer and a second follow it
    assert "automatic: largest shard" in record.active().reason


async def test_a_generation_short_of_session_starts_is_abandoned_by_the_pods(
    cluster: Cluster, pg: Backend
) -> None:
    """The command saw enough session starts, but other identifies spent them meanwhile: a
    pod's client of the new generation stops below IDENTIFY_MIN_REMAINING and abandons it."""
    # each pod's client starts from the 996 left after the first identifies and counts its own:
    # its third identify would go below the floor, so it reads the budget again and stops
    floor = 1_000 - OLD - 1
    cluster.env.update(IDENTIFY_MIN_REMAINING=str(floor))
    await cluster.start(0, 1)
    await cluster.wait_ready()
    gen = await _abandoned(cluster, pg, str(NEW), {"IDENTIFY_MIN_REMAINING": "0"})
    assert "identify budget exhausted" in gen.reason, gen
    assert all(p.running for p in cluster.pods.values())  # the pods serve on, generation 0
    accepted = [r for r in cluster.server.driver.identifies() if r.accepted]
    assert sum(1 for r in accepted if r.shard_count == NEW) < NEW  # stopped before the end


async def test_a_pod_killed_while_preparing_leaves_the_active_generation_serving(
    cluster: Cluster, pg: Backend
) -> None:
    """SIGKILL on a pod whose share of the new generation is not READY: its shards stay its
    own for REBALANCE_GRACE_S, the preparation times out and is abandoned; the other pod kept
    serving its guilds of the active generation all along."""
    cluster.env.update(RESHARD_PREPARE_TIMEOUT_S="5", REBALANCE_GRACE_S="60")
    await cluster.start(0, 1)
    await cluster.wait_ready()
    stream = CommandStream(cluster.server)
    code, out = await cluster.command("reshard", "--to", str(NEW))
    assert code == 0, out
    victim = cluster.pods[1].proc
    assert victim is not None
    victim.send_signal(
        signal.SIGKILL
    )  # before its new shards are READY (they identify 0.3 s apart)
    await victim.wait()
    record = await wait_for(
        lambda: _record(pg.redis_client, lambda r: r.get(1).state is not State.PREPARING),  # type: ignore[union-attr]
        within=60,
    )
    gen = record.get(1)
    assert gen is not None and gen.state is State.ABANDONED, gen
    assert "RESHARD_PREPARE_TIMEOUT_S=5" in gen.reason
    assert record.active().number == 0
    # pod 0's shards of generation 0 were never interrupted: commands in its guilds are answered
    mine = {shard for shard, rank in enumerate(ranks(OLD, 2)) if rank == 0}
    stream.guilds = [g for g in stream.guilds if shard_for_guild(g.id, OLD) in mine]
    stream.start()
    await asyncio.sleep(1)  # a second of traffic in pod 0's guilds
    tally = await stream.finish()
    assert tally.sent["slash"] > 0
    print(f"\npod killed while preparing: {gen.reason}; pod 0's guilds: {tally.line()}")
