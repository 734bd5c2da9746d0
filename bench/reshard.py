"""reshard: 4 -> 8 shards under traffic, against the stop and start it replaces.

A sandbox of generated guilds, spread evenly over 8 shards (so 4 shards hold twice as many:
at full scale 2,000 a shard, the 80 % of Discord's 2,500 at which RESHARD_AUTO would start one),
and three pods (`python -m app run`, live rebalancing). Slash /balance commands go round every
guild at a fixed rate throughout. Two ways from 4 to 8 shards, each from a settled 4-shard
cluster on an empty Redis:

- stop and start (the runbook before generations, the baseline): SIGTERM every pod, then start
  them with SHARD_COUNT=8;
- reshard: `python -m app reshard --to 8` while the pods serve.

For each: the longest time a guild had no session of the acting generation (sampled every
50 ms), from the request to every guild served by 8 shards, the commands answered once, not
answered (Discord's 3 s passed) and answered twice, the IDENTIFYs accepted and refused, and the
pods' peak resident memory.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

from app.coord.generations import KEY, Record
from bench.data import redis_client
from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import Pods, pods_for, rss_bytes
from bench.scale import Background, flush_redis, sweep
from bench.tables import Table
from bench.traffic import publish_commands, sandbox
from sandbox import SandboxServer
from sandbox.builders import build_world
from testsupport.keys import delete_keys
from testsupport.processes import BotProcess
from testsupport.serving import ServingSampler
from testsupport.waiting import wait_for

OLD, NEW = 4, 8


@dataclass(frozen=True, slots=True)
class Plan:
    """Guilds per new shard, their size, the background command rate, the identify window,
    the pods, the seconds of traffic before and after, RESHARD_DRAIN_S."""

    per_new_shard: int
    channels: int
    roles: int
    members: int
    rate: float
    identify_window: float
    pods: int = 3
    settle_s: float = 2.0
    drain_s: float = 5.0


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(2, 5, 3, 5, 5, 0.05, pods=2, settle_s=1.0, drain_s=1.0),  # CI: the harness
    "small": Plan(125, 20, 10, 30, 10, 0.2),
    "full": Plan(1_000, 50, 30, 100, 20, 0.2),
}


@dataclass
class Outcome:
    """One way from 4 to 8 shards."""

    way: str
    longest_gap_s: float
    #: From the request until the new count acts (the reshard: its switch's moment).
    to_acting_s: float
    to_serving_s: float
    commands: dict[str, int]
    identifies: int
    refused: int
    peak_rss_mb: float


def serving_with(server: SandboxServer, count: int) -> bool | None:
    """Every shard of `count` has exactly one connected session, and no other count has any."""
    sessions = [s for s in server.driver.sessions() if s.connected]
    if any(s.shard_count != count for s in sessions):
        return None
    held = sorted(s.shard_id for s in sessions)
    return held == list(range(count)) or None


async def one_way(ctx: RunContext, pods: Pods, way: str) -> Outcome:
    """A fresh sandbox and three 4-shard pods, then 4 -> 8 by `way`."""
    plan = PLANS[ctx.scale]
    world = build_world(
        plan.per_new_shard * NEW,
        plan.channels,
        plan.roles,
        plan.members,
        7,
        shard_count=NEW,
        lazy=True,
    )
    within = 120 + plan.per_new_shard * 0.1
    async with sandbox(world, identify_window=plan.identify_window, global_limit=50) as server:
        await publish_commands(server, pods.db.url)

        def pod(i: int, count: int) -> BotProcess:
            return pods.guildbot(
                f"{way}-{count}-{i}", server, None, POD_INDEX=str(i), SHARD_COUNT=str(count)
            )

        procs = [pod(i, OLD) for i in range(plan.pods)]
        try:
            await asyncio.gather(*(p.start() for p in procs))
            await wait_for(lambda: serving_with(server, OLD), within=within, interval=0.2)
            progress(f"{way}: a first command in each of {len(world.guilds)} guilds")
            await sweep(server, list(world.guilds))
            background = Background(server, plan.rate)
            async with redis_client(pods.redis_url) as client:
                sampler = ServingSampler(server, client)
                sampler.start()
                background.start()
                await asyncio.sleep(plan.settle_s)  # traffic on the old count first
                before = len(server.driver.identifies())
                progress(f"{way}: 4 -> 8 shards")
                started, requested = time.monotonic(), time.time()
                if way == "reshard":
                    await reshard(procs[0])
                else:
                    await asyncio.gather(*(p.stop() for p in procs))
                    # the old runbook's step 2: the old count's sessions and membership go
                    await delete_keys(client, "shard:*", "cluster:members")
                    procs = [pod(i, NEW) for i in range(plan.pods)]
                    await asyncio.gather(*(p.start() for p in procs))
                await wait_for(lambda: serving_with(server, NEW), within=within, interval=0.05)
                to_serving = time.monotonic() - started
                to_acting = to_serving
                raw = await client.get(KEY)
                if raw is not None:  # the reshard: the new count acts from its switch on
                    switched = Record.loads(raw).active().acts_from
                    to_acting = (switched or 0) / 1000 - requested
                await asyncio.sleep(plan.settle_s)  # traffic on the new count
                commands = await background.stop()
                gap = await sampler.stop()
            records = server.driver.identifies()[before:]
            peak = max(rss_bytes(p.pid, "VmHWM") for p in procs)
        finally:
            for proc in procs:
                await proc.kill()
    return Outcome(
        way,
        gap,
        to_acting,
        to_serving,
        commands,
        sum(1 for r in records if r.accepted),
        sum(1 for r in records if not r.accepted),
        peak / 2**20,
    )


async def reshard(proc: BotProcess) -> None:
    """`python -m app reshard --to 8` with a pod's settings; it must succeed."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "reshard",
        "--to",
        str(NEW),
        env=proc.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"reshard failed: {out.decode()}")


async def run(ctx: RunContext) -> Result:
    """The baseline (stop and start), then the reshard."""
    plan = PLANS[ctx.scale]
    guilds = plan.per_new_shard * NEW
    result = ctx.result(
        f"{guilds} guilds ({guilds // OLD} a shard at 4 shards, {plan.per_new_shard} at 8; "
        f"{plan.channels} channels, {plan.roles} roles, {plan.members} members each), "
        f"{plan.pods} pods, the sandbox at Discord's global limit (50 requests/s), identify window "
        f"{plan.identify_window:g} s; {plan.rate:g} slash commands/s round every guild."
    )
    shared = {
        "IDENTIFY_WINDOW_S": f"{plan.identify_window:g}",
        "LEASE_TTL_S": "10",
        "REBALANCE_GRACE_S": "30",
        "LOG_LEVEL": "INFO",
        "RESHARD_DRAIN_S": f"{plan.drain_s:g}",
    }
    outcomes: list[Outcome] = []
    async with pods_for(ctx, **shared) as pods:
        for way in ("stop and start", "reshard"):
            outcomes.append(await one_way(ctx, pods, way))
            await flush_redis(pods.redis_url)
    table = Table(
        f"4 -> 8 shards over {plan.pods} pods with commands flowing (stop and start: the baseline)",
        [
            "way",
            "longest time a guild was unserved s",
            "request -> 8 shards act s",
            "request -> only 8 shards connected s",
            "commands sent",
            "answered once",
            "not answered",
            "answered twice",
            "identifies",
            "identifies refused",
            "peak RSS/pod MB",
        ],
    )
    for o in outcomes:
        c = o.commands
        table.add(
            o.way,
            o.longest_gap_s,
            o.to_acting_s,
            o.to_serving_s,
            c["sent"],
            c["once"],
            c["unanswered"],
            c["twice"],
            o.identifies,
            o.refused,
            o.peak_rss_mb,
        )
    result.tables.append(table)
    result.facts["outcomes"] = [vars(o) for o in outcomes]
    result.notes += [
        "unserved: sampled every 50 ms, a guild whose shard (in the count of the generation "
        "acting at that moment) has no connected session; the longest such time of any guild.",
        "request -> 8 shards act: until the new count acts on events (stop and start: every "
        "new shard connected; reshard: the switch's moment, at least 10 s after the request, "
        "while the old count serves). Request -> only 8 shards connected: until the old "
        f"sessions ended too (the reshard: RESHARD_DRAIN_S, {plan.drain_s:g} s, after the switch).",
        "not answered: /balance commands with no response within 5 s (Discord's window is 3 s).",
        "peak RSS: the largest VmHWM of the pods that ran the 8 shards (the reshard's pods held "
        "both counts' guilds for a while).",
    ]
    return result


BENCHMARK = Benchmark("reshard", "4 -> 8 shards under traffic: reshard vs stop and start", run)
