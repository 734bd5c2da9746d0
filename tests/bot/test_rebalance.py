"""`kubectl scale` as the only knob: pods join and leave, shards follow, sessions are resumed.

Every test samples the sandbox's view of the gateway every 50 ms: which sessions are connected
for each shard. No shard may ever have two, and during a scale-up at most one may have none.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import redis.asyncio as redis

from app.coord.cluster_view import describe_cluster
from sandbox import SandboxServer
from tests.bot.cluster import Cluster
from tests.bot.traffic import CommandStream, traffic_sandbox
from tests.conftest import Backend
from tests.services import private_redis
from testsupport.waiting import wait_for

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


@pytest.fixture
async def sandbox(pg: Backend) -> AsyncIterator[SandboxServer]:
    server = await traffic_sandbox(pg, SHARDS)
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
    sampler, stream = Sampler(cluster.server), CommandStream(cluster.server)
    sampler.start()
    stream.start()
    scaled_at = time.monotonic()
    await cluster.start(2, 3)
    for index in (2, 3):
        await cluster.pods[index].wait_log("converged: shards [", within=60)
    await wait_for(lambda: _pods_hold(cluster, {0: 2, 1: 2, 2: 2, 3: 2}), within=60, interval=0.05)
    elapsed = time.monotonic() - scaled_at
    await stream.finish()
    await sampler.stop()
    assert sampler.max_holders() == 1  # never two sessions for one shard
    assert sampler.max_unowned(since=scaled_at) <= 1  # one shard in flight at a time
    assert identifies(cluster.server) == before  # every moved shard was resumed
    assert cluster.server.driver.duplicate_shard_holders() == []
    print(f"\n2 -> 4 pods, 8 shards: converged {elapsed:.2f} s after the new pods started")
    link = cluster.pg.coord.redis
    assert link is not None
    view = (await describe_cluster(link, SHARDS, GRACE)).splitlines()
    assert view[0] == f"generation 0: {SHARDS} shards, active"  # no reshard ever: no record
    assert view[3].startswith("4 live pod(s)")
    rows = [line.split() for line in view[6:]]
    assert len(rows) == SHARDS and all(len(r) == 5 and r[2] != "-" for r in rows)  # all leased
    assert len({r[1] for r in rows}) == 4  # every pod is planned some shards


def _pods_hold(cluster: Cluster, counts: dict[int, int]) -> bool | None:
    """Each pod's logged share matches `counts` and every shard has one session."""
    latest = {i: _last_converged(cluster.pods[i].lines) for i in counts}
    if any(v != counts[i] for i, v in latest.items()):
        return None
    return _balanced(cluster.server)


def _last_converged(lines: Sequence[str]) -> int | None:
    for line in reversed(lines):
        if "converged: shards [" in line:
            inside = line.split("converged: shards [", 1)[1].split("]", 1)[0]
            return len([x for x in inside.split(",") if x.strip()])
    return None


async def test_sigterm_moves_shards_at_once_by_resume(cluster: Cluster) -> None:
    await cluster.start(0, 1)
    await converged(cluster, {0: 4, 1: 4})
    before = identifies(cluster.server)
    sampler, stream = Sampler(cluster.server), CommandStream(cluster.server)
    sampler.start()
    stream.start()
    stopped_at = time.monotonic()
    assert await cluster.pods[1].stop() == 0, cluster.pods[1].log()
    released_in = time.monotonic() - stopped_at
    await wait_for(lambda: _pods_hold(cluster, {0: 8}), within=30, interval=0.05)
    await stream.finish()
    await sampler.stop()
    assert released_in < GRACE  # it released them; nobody waited for a grace period
    assert sampler.max_holders() == 1
    assert identifies(cluster.server) == before  # resumed, not re-identified
    assert cluster.pods[1].logged("shards parked and leases released")


async def test_sigkill_moves_shards_only_after_the_grace_period(cluster: Cluster) -> None:
    await cluster.start(0, 1)
    await converged(cluster, {0: 4, 1: 4})
    sampler, stream = Sampler(cluster.server), CommandStream(cluster.server)
    sampler.start()
    stream.start()
    held_by_1 = [s for s in range(SHARDS) if s >= 4]  # pod 1 holds the upper half
    proc = cluster.pods[1].proc
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await proc.wait()
    await wait_for(lambda: _pods_hold(cluster, {0: 8}), within=60, interval=0.05)
    stream.gaps.append((killed_at, time.monotonic()))
    await stream.finish()
    await sampler.stop()
    for shard in held_by_1:
        taken = sampler.first_held(shard, after=killed_at + 0.2)
        assert taken is not None and taken - killed_at >= GRACE * 0.95, (shard, taken)
    assert sampler.max_holders() == 1


async def test_every_command_is_answered_once_through_scale_up_sigterm_sigkill_and_rejoin(
    cluster: Cluster,
) -> None:
    """Commands flow on every shard, slash and prefix, while the cluster goes 2 -> 4 pods
    (scale-up), 4 -> 3 (SIGTERM), 3 -> 2 (SIGKILL, taken over after the grace period) and back
    to 4 (rejoin): each is answered exactly once, none refused because of a handover."""
    await cluster.start(0, 1)
    await converged(cluster, {0: 4, 1: 4})
    sampler, stream = Sampler(cluster.server), CommandStream(cluster.server)
    sampler.start()
    stream.start()
    await cluster.start(2, 3)  # scale-up
    await converged(cluster, {0: 2, 1: 2, 2: 2, 3: 2})
    assert await cluster.pods[3].stop() == 0, cluster.pods[3].log()  # SIGTERM
    await wait_for(lambda: _all_held(cluster, [0, 1, 2], SHARDS), within=60, interval=0.05)
    proc = cluster.pods[2].proc
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await proc.wait()
    await wait_for(lambda: _all_held(cluster, [0, 1], SHARDS), within=60, interval=0.05)
    stream.gaps.append((killed_at, time.monotonic()))
    await cluster.start(2, 3)  # rejoin
    await converged(cluster, {0: 2, 1: 2, 2: 2, 3: 2})
    tally = await stream.finish()
    await sampler.stop()
    assert sampler.max_holders() == 1
    assert cluster.server.driver.duplicate_shard_holders() == []
    print(f"\nscale-up, SIGTERM, SIGKILL, rejoin: {tally.line()}")


def _all_held(cluster: Cluster, pods: list[int], shards: int) -> bool | None:
    """The listed pods converged on shares that add up to every shard, each held once."""
    shares = [_last_converged(cluster.pods[i].lines) for i in pods]
    if None in shares or sum(s or 0 for s in shares) != shards:
        return None
    return _balanced(cluster.server)


async def test_a_redis_restart_holds_every_lease_back_a_whole_epoch(
    sandbox: SandboxServer, pg: Backend, tmp_path: Path
) -> None:
    """Redis restarts empty behind the pods' pooled connections (all stale at once): no lease
    is granted until one TTL after the new epoch began, no shard ever has two sessions, and
    every pod reports that it owns no shard meanwhile."""
    ttl = 3.0
    async with private_redis() as own:
        cluster = Cluster(sandbox, pg, own.url, tmp_path, **{**POD_ENV, "LEASE_TTL_S": str(ttl)})
        try:
            await cluster.start(0, 1)
            await converged(cluster, {0: 4, 1: 4})
            sampler, owned = Sampler(sandbox), OwnedShards(cluster)
            sampler.start()
            owned.start()
            restarted_at = time.time()
            await own.restart()
            restarted = time.monotonic()

            def retaken() -> bool | None:
                again = [t for p in cluster.pods.values() for t in _lease_grants(p.lines)]
                return len([t for t in again if t > restarted_at]) >= SHARDS or None

            await wait_for(retaken, within=60, interval=0.05)
            await wait_for(lambda: _balanced(sandbox), within=60, interval=0.05)
            await sampler.stop()
            await owned.stop()
            client = redis.Redis.from_url(own.url)
            epoch = int(await client.get("cluster:epoch") or 0) / 1000
            await client.aclose()
        finally:
            await cluster.close()
    grants = sorted(t for proc in cluster.pods.values() for t in _lease_grants(proc.lines))
    grants = [t for t in grants if t > restarted_at]
    assert len(grants) >= SHARDS
    assert epoch >= restarted_at - 0.1  # the epoch began after the restart...
    assert grants[0] >= epoch + ttl - 0.01  # ...and no lease was granted within it
    assert sampler.max_holders() == 1
    for index in cluster.pods:
        assert owned.reported(index, 0, restarted, restarted + ttl), index
    print(
        f"\nredis restart: first lease {grants[0] - restarted_at:.2f} s after it (epoch "
        f"{ttl:g} s), every shard served again {time.monotonic() - restarted:.1f} s after"
    )


class OwnedShards:
    """Each pod's guildbot_owned_shards, from its /metrics every 100 ms."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.samples: list[tuple[float, int, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for index in self.cluster.pods:
                text = await self.cluster.http(index, "/metrics", ok_only=True)
                for line in (text or "").splitlines():
                    if line.startswith("guildbot_owned_shards "):
                        self.samples.append((time.monotonic(), index, float(line.split()[1])))
            await asyncio.sleep(0.1)  # the sampling period itself

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def reported(self, index: int, value: float, start: float, end: float) -> bool:
        return any(i == index and v == value and start <= t <= end for t, i, v in self.samples)


def _lease_grants(lines: Iterable[str]) -> list[float]:
    """When each "lease taken" line was logged (Unix time)."""
    found = []
    for line in lines:
        if "lease taken" in line:
            found.append(datetime.fromisoformat(json.loads(line)["time"]).timestamp())
    return found


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
