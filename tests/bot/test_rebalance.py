"""`kubectl scale` as the only knob: pods join and leave, shards follow, sessions are resumed.

Every test samples the sandbox's view of the gateway every 50 ms: which sessions are connected
for each shard. No shard may ever have two, and during a scale-up at most one may have none.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from app.coord.cluster_view import describe_live
from app.db.models import LedgerEntry, Member
from app.sandbox import SandboxServer
from tests.bot.cluster import Cluster, publish
from tests.bot.world import community_world
from tests.conftest import Backend, delete_keys
from tests.services import wait_for

pytestmark = pytest.mark.slow

SHARDS = 8
GRACE = 4.0
LEASE_TTL = 2.0
POD_ENV = {
    "SHARD_COUNT": str(SHARDS),
    "IDENTIFY_WINDOW_S": "0.3",
    "LEASE_TTL_S": str(LEASE_TTL),
    "REBALANCE_GRACE_S": str(GRACE),
}
NAMES = ["m1", "m2", "m3", "m4"]


@dataclass
class Sampler:
    """Connected sessions per shard, every 50 ms."""

    server: SandboxServer
    samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            holders = self.server.driver.shard_holders()
            self.samples.append(
                (time.monotonic(), {s: len(holders.get(s, [])) for s in range(SHARDS)})
            )
            await asyncio.sleep(0.05)  # the sampling period itself

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def max_holders(self) -> int:
        return max(max(counts.values()) for _, counts in self.samples)

    def max_unowned(self, since: float = 0.0) -> int:
        return max(
            sum(1 for c in counts.values() if c == 0) for t, counts in self.samples if t >= since
        )

    def first_held(self, shard: int, after: float) -> float | None:
        return next((t for t, counts in self.samples if t > after and counts[shard]), None)


class TransferStream:
    """A steady stream of transfer commands to guilds on every shard."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.handles: list = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        rng = random.Random(11)
        guilds = list(self.server.world.guilds.values())
        i = 0
        while not self._stop.is_set():
            sender, recipient = rng.sample(NAMES, 2)
            self.handles.append(
                await self.server.driver.slash(
                    guilds[i % len(guilds)],
                    "general",
                    sender,
                    "transfer",
                    member=recipient,
                    amount=rng.randint(1, 5),
                )
            )
            i += 1
            await asyncio.sleep(0.1)  # the offered rate: ten commands a second

    async def finish(self, pg: Backend) -> None:
        """Stop sending; every command answered exactly once; coins conserved in every guild."""
        self._stop.set()
        assert self._task is not None
        await self._task
        replies = [await h.wait_response(timeout=40) for h in self.handles]
        assert all(len([m for m in h.history if m.kind == "response"]) == 1 for h in self.handles)
        done = sum(1 for r in replies if r.content.startswith("Sent"))
        assert done + sum(1 for r in replies if "restarting" in r.content) == len(replies)
        assert await LedgerEntry.filter(kind="transfer_out").count() == done
        for guild in self.server.world.guilds.values():
            coins = await Member.filter(guild_id=guild.id).values_list("coins", flat=True)
            assert sum(coins) == 1_000 * len(NAMES)


@pytest.fixture
async def sandbox(pg: Backend) -> AsyncIterator[SandboxServer]:
    await delete_keys(pg.coord.redis.client, "identify:*", "shard:*", "cluster:*")  # type: ignore[union-attr]
    world = community_world([(s, SHARDS) for s in range(SHARDS)], members=4)
    server = SandboxServer(world=world, identify_window=0.3, interaction_deadline=40)
    await server.start()
    await publish(server, pg.db_url)
    for guild in world.guilds.values():
        for name in NAMES:
            await pg.bank.grant(guild.id, 1, world.user(name).id, 1_000)
    yield server
    await server.stop()


def identifies(server: SandboxServer) -> int:
    return sum(1 for r in server.driver.identifies() if r.accepted)


async def converged(cluster: Cluster, counts: dict[int, int], within: float = 60) -> None:
    """Wait until each listed pod converged on its share and every shard has one session."""
    await wait_for(lambda: _pods_hold(cluster, counts), within=within, interval=0.05)


def _balanced(server: SandboxServer) -> bool | None:
    holders = server.driver.shard_holders()
    return all(len(holders.get(s, [])) == 1 for s in range(SHARDS)) or None


async def test_scale_from_two_to_four_pods_moves_shards_by_resume(cluster: Cluster) -> None:
    await cluster.start(0, 1)
    await converged(cluster, {0: 4, 1: 4})
    before = identifies(cluster.server)
    assert before == SHARDS
    sampler, stream = Sampler(cluster.server), TransferStream(cluster.server)
    sampler.start()
    stream.start()
    scaled_at = time.monotonic()
    await cluster.start(2, 3)
    for index in (2, 3):
        await cluster.pods[index].wait_log("converged: shards [", within=60)
    await wait_for(lambda: _pods_hold(cluster, {0: 2, 1: 2, 2: 2, 3: 2}), within=60, interval=0.05)
    elapsed = time.monotonic() - scaled_at
    await stream.finish(cluster.pg)
    await sampler.stop()
    assert sampler.max_holders() == 1  # never two sessions for one shard
    assert sampler.max_unowned(since=scaled_at) <= 1  # one shard in flight at a time
    assert identifies(cluster.server) == before  # every moved shard was resumed
    assert cluster.server.driver.duplicate_shard_holders() == []
    print(f"\n2 -> 4 pods, 8 shards: converged {elapsed:.2f} s after the new pods started")
    link = cluster.pg.coord.redis
    assert link is not None
    view = (await describe_live(link, SHARDS, GRACE)).splitlines()
    assert view[0].startswith("4 live pod(s)")
    rows = [line.split() for line in view[3:]]
    assert len(rows) == SHARDS and all(len(r) == 5 and r[2] != "-" for r in rows)  # all leased
    assert len({r[1] for r in rows}) == 4  # every pod is planned some shards


def _pods_hold(cluster: Cluster, counts: dict[int, int]) -> bool | None:
    """Each pod's logged share matches `counts` and every shard has one session."""
    latest = {i: _last_converged(cluster.pods[i].lines) for i in counts}
    if any(v != counts[i] for i, v in latest.items()):
        return None
    return _balanced(cluster.server)


def _last_converged(lines: list[str]) -> int | None:
    for line in reversed(lines):
        if "converged: shards [" in line:
            inside = line.split("converged: shards [", 1)[1].split("]", 1)[0]
            return len([x for x in inside.split(",") if x.strip()])
    return None


async def test_sigterm_moves_shards_at_once_by_resume(cluster: Cluster) -> None:
    await cluster.start(0, 1)
    await converged(cluster, {0: 4, 1: 4})
    before = identifies(cluster.server)
    sampler, stream = Sampler(cluster.server), TransferStream(cluster.server)
    sampler.start()
    stream.start()
    stopped_at = time.monotonic()
    assert await cluster.pods[1].stop() == 0, cluster.pods[1].log()
    released_in = time.monotonic() - stopped_at
    await wait_for(lambda: _pods_hold(cluster, {0: 8}), within=30, interval=0.05)
    await stream.finish(cluster.pg)
    await sampler.stop()
    assert released_in < GRACE  # it released them; nobody waited for a grace period
    assert sampler.max_holders() == 1
    assert identifies(cluster.server) == before  # resumed, not re-identified
    assert cluster.pods[1].logged("shards parked and leases released")


async def test_sigkill_moves_shards_only_after_the_grace_period(cluster: Cluster) -> None:
    await cluster.start(0, 1)
    await converged(cluster, {0: 4, 1: 4})
    sampler, stream = Sampler(cluster.server), TransferStream(cluster.server)
    sampler.start()
    stream.start()
    held_by_1 = [s for s in range(SHARDS) if s >= 4]  # pod 1 holds the upper half
    proc = cluster.pods[1].proc
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await proc.wait()
    await wait_for(lambda: _pods_hold(cluster, {0: 8}), within=60, interval=0.05)
    await stream.finish(cluster.pg)
    await sampler.stop()
    for shard in held_by_1:
        taken = sampler.first_held(shard, after=killed_at + 0.2)
        assert taken is not None and taken - killed_at >= GRACE * 0.95, (shard, taken)
    assert sampler.max_holders() == 1


async def test_a_partitioned_pod_stops_its_shards_before_others_take_them(
    cluster: Cluster, redis_server_url: str
) -> None:
    proxy = await TcpProxy.to(redis_server_url)
    try:
        await cluster.start(0)
        cluster.redis_url = proxy.url  # pod 1 reaches Redis only through the proxy
        await cluster.start(1)
        await converged(cluster, {0: 4, 1: 4})
        sampler = Sampler(cluster.server)
        sampler.start()
        cut_at = time.monotonic()
        await proxy.cut()
        await cluster.pods[1].wait_log("lost the lease of shard", within=30)
        await wait_for(lambda: _pods_hold(cluster, {0: 8}), within=60, interval=0.05)
        await sampler.stop()
        assert sampler.max_holders() == 1  # the partitioned pod had stopped before
        for shard in range(4, SHARDS):
            gone = next(t for t, c in sampler.samples if t > cut_at and c[shard] == 0)
            assert gone - cut_at < LEASE_TTL  # stopped before its lease could expire
    finally:
        await proxy.close()


class TcpProxy:
    """A loopback TCP relay to Redis that the test can cut, as a network partition would."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.base_events.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    @classmethod
    async def to(cls, redis_url: str) -> TcpProxy:
        host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")
        proxy = cls(host, int(port))
        proxy.server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        listen = proxy.server.sockets[0].getsockname()[1]
        proxy.url = f"redis://127.0.0.1:{listen}/{redis_url.rsplit('/', 1)[1]}"
        return proxy

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self.writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self.pipes.add(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self.server is not None:
            self.server.close()
        for task in self.pipes:
            task.cancel()
        for writer in self.writers:
            writer.close()

    async def close(self) -> None:
        await self.cut()
        await asyncio.gather(*self.pipes, return_exceptions=True)
