"""memory: resident memory of one bot process holding many realistic guilds.

One process runs every shard (2 shards, so that the largest size stays within Discord's
2,500 guilds per shard) against an in-process sandbox whose world has N guilds of 50 channels,
30 roles and 100 members each (sandbox.builders.build_world). Once the process says every
shard is ready (ours: /readyz; the bare bots: on_ready), and a second later, its VmRSS is read
from /proc/PID/status (VmHWM gives the peak). Three bots:

- ours: `python -m app run` (GuildBot as configured: guilds, guild messages, moderation and
  message content intents, no members intent, `MemberCacheFlags.none()`, `max_messages=None`,
  `chunk_guilds_at_startup=False`), with its database and Redis;
- discord.py defaults + members: a plain AutoShardedBot (bench/barebot.py) with
  `Intents.default()` plus members and every default cache (`chunk_guilds_at_startup`,
  `max_messages=1000`, the default member cache flags). With the members intent the
  sandbox's GUILD_CREATE carries all 100 members of each guild (below `large_threshold`),
  so no chunk request is needed: those members are what it holds;
- discord.py defaults: the same without the members intent (GUILD_CREATE carries only the
  bot's own member), a yardstick that separates the intent from the cache settings.

MiB per 1,000 guilds is the slope between the two sizes, which takes out what every process
holds before its first guild (the interpreter, discord.py, our imports, pools).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import Pods, pods_for, rss_bytes
from bench.tables import Table
from bench.traffic import sandbox
from sandbox.builders import build_world
from testsupport.processes import BotProcess

SHARDS = 2
WINDOW = 0.05
SIZES: dict[Scale, tuple[int, int]] = {
    "tiny": (50, 200),
    "small": (500, 2_000),
    "full": (1_000, 5_000),
}
READY_WITHIN: dict[Scale, float] = {"tiny": 60, "small": 300, "full": 900}
#: Seconds between ready and the first RSS reading (the readings are settle / 5 apart).
SETTLE: dict[Scale, float] = {"tiny": 0.4, "small": 1.0, "full": 1.0}
MIB = 2**20


@dataclass(frozen=True, slots=True)
class Variant:
    """A bot to measure."""

    label: str
    kind: str  # "ours" or "bare"
    members_intent: bool = False


VARIANTS = (
    Variant("ours (GuildBot)", "ours"),
    Variant("discord.py defaults + members", "bare", members_intent=True),
    Variant("discord.py defaults", "bare"),
)


@dataclass
class Sample:
    """One process at one size."""

    variant: Variant
    guilds: int
    rss: int
    peak: int
    ready_s: float
    cached: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """For the facts."""
        return {
            "bot": self.variant.label,
            "guilds": self.guilds,
            "rss_bytes": self.rss,
            "peak_bytes": self.peak,
            "ready_s": self.ready_s,
            **self.cached,
        }


async def settled_rss(bot: BotProcess, settle: float, samples: int = 5) -> int:
    """The median of a few VmRSS readings, `settle` seconds after ready."""
    await asyncio.sleep(settle)
    readings = []
    for _ in range(samples):
        readings.append(rss_bytes(bot.pid))
        await asyncio.sleep(settle / 5)
    return int(statistics.median(readings))


async def metric_guilds(bot: BotProcess) -> int | None:
    """Guilds our bot reports in guildbot_shard_guilds (summed over its shards)."""
    answer = await bot.http("/metrics")
    if answer is None:
        return None
    total = 0.0
    for line in answer[1].splitlines():
        if line.startswith("guildbot_shard_guilds{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def measure(variant: Variant, guilds: int, ctx: RunContext, pods: Pods) -> Sample:
    """Start the bot against a sandbox of `guilds` guilds, wait until ready, read its RSS."""
    world = build_world(guilds, 50, 30, 100, seed=11, shard_count=SHARDS)
    within = READY_WITHIN[ctx.scale]
    async with sandbox(world, identify_window=WINDOW) as server:
        name = f"{variant.kind}-{guilds}-{'m' if variant.members_intent else 'n'}"
        if variant.kind == "ours":
            bot = pods.guildbot(name, server)
        else:
            members = "1" if variant.members_intent else "0"
            bot = pods.barebot(name, server, BARE_MODE="defaults", BARE_MEMBERS=members)
        try:
            started = time.monotonic()
            await bot.start()
            cached: dict[str, Any] = {}
            if variant.kind == "ours":
                await bot.wait_ready(within)
                cached["cached_guilds"] = await metric_guilds(bot)
            else:
                line = await bot.wait_log("bare bot ready", within)
                counts = json.loads(line.split("bare bot ready: ", 1)[1])
                cached.update({f"cached_{k}": v for k, v in counts.items()})
            ready_s = time.monotonic() - started
            rss = await settled_rss(bot, SETTLE[ctx.scale])
            peak = rss_bytes(bot.pid, "VmHWM")
        finally:
            await bot.stop()
    return Sample(variant, guilds, rss, peak, ready_s, cached)


def per_thousand(small: Sample, big: Sample) -> float:
    """MiB per 1,000 guilds: the slope between two sizes."""
    return (big.rss - small.rss) / (big.guilds - small.guilds) * 1_000 / MIB


async def run(ctx: RunContext) -> Result:
    """Every variant at both sizes."""
    sizes = SIZES[ctx.scale]
    result = ctx.result(
        f"{sizes[0]:,} and {sizes[1]:,} guilds of 50 channels, 30 roles and 100 members "
        f"(build_world), {SHARDS} shards in one process; VmRSS once every shard is ready "
        "(median of 5 readings from a second later; 0.4 s at scale tiny)."
    )
    samples: list[Sample] = []
    async with pods_for(ctx, SHARD_COUNT=str(SHARDS), IDENTIFY_WINDOW_S=str(WINDOW)) as pods:
        for guilds in sizes:
            for variant in VARIANTS:
                progress(f"{variant.label}: {guilds:,} guilds")
                samples.append(await measure(variant, guilds, ctx, pods))
    result.tables += tables(samples, sizes)
    result.facts["samples"] = [s.as_dict() for s in samples]
    result.notes += [
        "PostgreSQL: the shared server above (a database of the run's own); Redis: a "
        "redis-server of the run's own (same binary as above), since bot processes keep fixed "
        "keys (leases, identify queue) that concurrent runs would share.",
        "RSS: resident set (VmRSS) once ready; peak: VmHWM, the most the process held at any "
        "moment (JSON parsing of the GUILD_CREATE burst).",
        "ready after: from process start to every shard ready, including discord.py's "
        "guild_ready_timeout of 2 s after each shard's last GUILD_CREATE.",
        "Ours receives no member lists at all (no members intent): the sandbox, like Discord, "
        "sends only the bot's own member in GUILD_CREATE. Every bot keeps channels and roles; "
        "ours keeps no members, no messages and no chunked member lists.",
    ]
    return result


def tables(samples: list[Sample], sizes: tuple[int, int]) -> list[Table]:
    """The samples, and MiB per 1,000 guilds."""
    each = Table(
        "Resident memory once ready (one process, 2 shards)",
        ["bot", "guilds", "RSS MiB", "peak MiB", "ready after s", "members cached"],
    )
    for sample in samples:
        members = sample.cached.get("cached_members")
        each.add(
            sample.variant.label,
            sample.guilds,
            sample.rss / MIB,
            sample.peak / MIB,
            sample.ready_s,
            members
            if members is not None
            else "none (no members intent)"
            if sample.variant.kind == "ours"
            else None,
        )
    by = {(s.variant.label, s.guilds): s for s in samples}
    slope = Table(
        f"MiB per 1,000 guilds (slope from {sizes[0]:,} to {sizes[1]:,} guilds)",
        ["bot", "MiB per 1,000 guilds", f"RSS at {sizes[1]:,} guilds MiB", "vs ours"],
    )
    ours = per_thousand(by[(VARIANTS[0].label, sizes[0])], by[(VARIANTS[0].label, sizes[1])])
    for variant in VARIANTS:
        small, big = by[(variant.label, sizes[0])], by[(variant.label, sizes[1])]
        value = per_thousand(small, big)
        slope.add(variant.label, value, big.rss / MIB, f"{value / ours:.1f}x" if ours else "-")
    return [each, slope]


BENCHMARK = Benchmark(
    "memory",
    "resident memory of one bot process per 1,000 guilds: ours against discord.py's defaults",
    run,
)
