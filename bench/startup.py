"""startup: 3 processes x 4 shards starting together, against the identify limit's floor.

SHARD_COUNT=12; each process a fixed SHARD_IDS range ([0..3], [4..7], [8..11]), all three
started at once against a fresh in-process sandbox with `max_concurrency` 1 and then 4 and an
identify window W (one accepted IDENTIFY per bucket `shard_id % max_concurrency` per W; one
too many gets op 9 INVALID_SESSION). Measured from the moment the processes are started:

- all READY: every shard has a session (the sandbox driver's `wait_for_shards`), i.e. the
  last IDENTIFY was accepted;
- the time from the first accepted IDENTIFY to the last, against its floor: with B =
  ceil(12 / max_concurrency) identifies per bucket, they cannot span less than (B - 1) x W,
  and the brief's floor for "all READY" is B x W;
- op 9: rejected IDENTIFYs (identify attempts over the limit);
- all ready: every process serving (ours: /readyz; the bare bot: on_ready), which adds the
  GUILD_CREATE burst and discord.py's guild_ready_timeout (2 s).

Ours: `python -m app run` with its Redis identify queue (IDENTIFY_WINDOW_S = W, the bucket count
from /gateway/bot's max_concurrency). Baseline: a bare discord.py AutoShardedBot per process
(bench/barebot.py) whose before_identify_hook spaces its own shards by W, as a bot tuned to
the window but with no coordination between processes would.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from bench.data import redis_client
from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import Pods, pods_for
from bench.tables import Table
from bench.traffic import sandbox
from sandbox.builders import build_world
from testsupport.processes import stop_all

SHARDS = 12
PROCESSES = 3
CONCURRENCY = (1, 4)


@dataclass(frozen=True, slots=True)
class Plan:
    """The window and the world of a scale."""

    window: float
    guilds: int
    members: int

    def floor(self, max_concurrency: int) -> float:
        """The brief's floor for all READY: ceil(shards / max_concurrency) x window."""
        return math.ceil(SHARDS / max_concurrency) * self.window

    def span_floor(self, max_concurrency: int) -> float:
        """The least time from the first accepted IDENTIFY to the last."""
        return (math.ceil(SHARDS / max_concurrency) - 1) * self.window


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(window=0.2, guilds=24, members=20),
    "small": Plan(window=1.0, guilds=240, members=100),
    "full": Plan(window=5.0, guilds=1_200, members=100),
}


@dataclass
class Start:
    """One cold start of the three processes."""

    bot: str
    max_concurrency: int
    all_ready_s: float  # every shard has a session (READY)
    serving_s: float  # every process ready (readyz / on_ready)
    first_identify_s: float
    span_s: float
    accepted: int
    rejected: int
    duplicates: int

    def as_dict(self) -> dict[str, Any]:
        """For the facts."""
        return dict(vars(self))


def shard_ranges() -> list[list[int]]:
    """Each process's fixed SHARD_IDS."""
    per = SHARDS // PROCESSES
    return [list(range(p * per, (p + 1) * per)) for p in range(PROCESSES)]


async def flush(redis_url: str) -> None:
    """Empty our private Redis (identify queue, leases, saved sessions) between starts."""
    async with redis_client(redis_url) as client:
        await client.flushall()


async def cold_start(
    bot: str, max_concurrency: int, plan: Plan, pods: Pods, within: float
) -> Start:
    """Start three processes at once against a fresh sandbox; time them."""
    world = build_world(plan.guilds, 50, 30, plan.members, seed=5, shard_count=SHARDS)
    await flush(pods.redis_url)
    async with sandbox(
        world, identify_window=plan.window, max_concurrency=max_concurrency
    ) as server:
        processes = []
        for index, ids in enumerate(shard_ranges()):
            name, shard_ids = f"{bot}-mc{max_concurrency}-{index}", json.dumps(ids)
            if bot == "ours":
                processes.append(pods.guildbot(name, server, SHARD_IDS=shard_ids))
            else:
                bare = pods.barebot(name, server, SHARD_IDS=shard_ids, BARE_MODE="defaults")
                processes.append(bare)
        try:
            started_wall, started = time.time(), time.monotonic()
            await asyncio.gather(*(p.start() for p in processes))
            await server.driver.wait_for_shards(list(range(SHARDS)), timeout=within)
            all_ready = time.monotonic() - started
            if bot == "ours":
                await asyncio.gather(*(p.wait_ready(within) for p in processes))
            else:
                await asyncio.gather(*(p.wait_log("bare bot ready", within) for p in processes))
            serving = time.monotonic() - started
            records = server.driver.identifies()
            duplicates = len(server.driver.duplicate_shard_holders())
        finally:
            await stop_all(processes)
    accepted = sorted(r.time for r in records if r.accepted)
    return Start(
        bot="ours (Redis identify queue)" if bot == "ours" else "bare discord.py, per process",
        max_concurrency=max_concurrency,
        all_ready_s=all_ready,
        serving_s=serving,
        first_identify_s=accepted[0] - started_wall,
        span_s=accepted[-1] - accepted[0],
        accepted=len(accepted),
        rejected=sum(1 for r in records if not r.accepted),
        duplicates=duplicates,
    )


async def run(ctx: RunContext) -> Result:
    """Ours and the bare bot at each max_concurrency."""
    plan = PLANS[ctx.scale]
    within = 60 + 4 * plan.floor(1)
    result = ctx.result(
        f"SHARD_COUNT={SHARDS}, {PROCESSES} processes with fixed SHARD_IDS ranges started "
        f"together; identify window {plan.window:g} s, max_concurrency "
        f"{' and '.join(map(str, CONCURRENCY))}; {plan.guilds} guilds of 50 channels, "
        f"30 roles and {plan.members} members spread over the shards."
    )
    starts: list[Start] = []
    async with pods_for(ctx, SHARD_COUNT=str(SHARDS), IDENTIFY_WINDOW_S=str(plan.window)) as pods:
        for max_concurrency in CONCURRENCY:
            for bot in ("ours", "bare"):
                progress(f"{bot}: max_concurrency {max_concurrency}")
                starts.append(await cold_start(bot, max_concurrency, plan, pods, within))
    table = Table(
        f"Cold start, {PROCESSES} processes x {SHARDS // PROCESSES} shards, identify window "
        f"{plan.window:g} s",
        [
            "max_concurrency",
            "bot",
            "all READY s",
            "floor s",
            "vs floor",
            "first IDENTIFY s",
            "first to last IDENTIFY s",
            "span floor s",
            "op 9",
            "all serving s",
        ],
    )
    for start in starts:
        floor = plan.floor(start.max_concurrency)
        table.add(
            start.max_concurrency,
            start.bot,
            start.all_ready_s,
            floor,
            f"{start.all_ready_s / floor:.2f}x",
            start.first_identify_s,
            start.span_s,
            plan.span_floor(start.max_concurrency),
            start.rejected,
            start.serving_s,
        )
    result.tables.append(table)
    result.facts["starts"] = [s.as_dict() for s in starts]
    result.facts["shards"] = SHARDS
    result.notes += [
        "PostgreSQL: the shared server above (a database of the run's own); Redis: a "
        "redis-server of the run's own (same binary as above), since bot processes keep fixed "
        "keys (leases, identify queue) that concurrent runs would share.",
        "All times from the moment the three processes were started. all READY: the last "
        "shard's IDENTIFY accepted (the sandbox then sends READY at once); floor: "
        "ceil(shards / max_concurrency) x window; first IDENTIFY: process start-up (imports, "
        "database and Redis, login) until the first accepted IDENTIFY; span floor: "
        "(ceil(shards / max_concurrency) - 1) x window, the least time between the first and "
        "the last accepted IDENTIFY.",
        "op 9: IDENTIFYs the sandbox refused with INVALID_SESSION for coming too early in "
        "their bucket, as Discord does; each one costs the shard a new connection and a "
        "fresh attempt after discord.py's wait.",
        "all serving: ours answers /readyz in every process; the bare bot fired on_ready in "
        "every process; both include discord.py's guild_ready_timeout (2 s) after a shard's "
        "last GUILD_CREATE.",
    ]
    return result


BENCHMARK = Benchmark(
    "startup", "cold start of 3 processes x 4 shards against the identify limit", run
)
