"""commands: slash commands and chat end to end, through the sandbox, against a bare bot's ping.

Four shards in two bot processes (`python -m app run`, SHARD_COUNT=4, SHARD_IDS=[0,1] and
[2,3]) against an in-process sandbox (see bench/traffic.py for why in-process), a fresh
database on the server and a Redis of their own. Members (every human of every generated
guild, realistic guilds of 50 channels, 30 roles, 100 members) send:

- `/transfer member amount:1` to a random member of the same guild (senders hold plenty);
- `/balance`;
- chat: a plain message in #general. A message earns XP silently unless it levels the member
  up, so every member starts one XP short of level 1 and each message comes from a member who
  has not spoken yet in this step: each message then costs the bot its whole XP path (Redis
  cooldown, row lock, update) plus the level-up message, and that message is its answer.
  The database confirms it: after each step as many members are at level 1 as level-up
  messages were seen.

Each at fixed offered rates (an open loop: events are sent on schedule whatever the
answers) and at saturation (a closed loop: N members each send their next command as soon
as the last is answered). Latency runs from the moment an event was due to be sent to the
moment the sandbox recorded the answer.

Baseline: a bare discord.py AutoShardedBot (bench/barebot.py), also 4 shards in 2 processes
through the same sandbox, answering `/ping` with "pong" and a message "ping" with a reply: the
ceiling of the sandbox + discord.py pipeline on this machine, with no database, Redis or cogs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data import connect, copy_members, fetch_value, redis_client
from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import TAIL, Pods, cpu, pods_for
from bench.profile import CATEGORIES, OTHER, Profile, by_category, read_stacks
from bench.tables import Table, ratio
from bench.timing import Run, closed_loop, open_loop
from bench.traffic import (
    Crowd,
    ReplyWatcher,
    Seat,
    answer,
    kind_of,
    publish_commands,
    quiet_gc,
    sandbox,
)
from sandbox import SandboxServer
from sandbox.builders import build_world
from sandbox.world import World
from testsupport.keys import delete_keys
from testsupport.processes import BotProcess, stop_all

SHARDS = 4
PROCESS_SHARDS = ([0, 1], [2, 3])
WINDOW = 0.1  # the sandbox's identify window and the bots' IDENTIFY_WINDOW_S
COINS = 10**12
XP_BEFORE = 99  # one short of level 1 (100 XP): the next message levels up
REPLY_TIMEOUT = 30.0
IDLE_S = 3.0  # how long the bots' idle CPU is measured before each workload
#: The bots' REST_GLOBAL_LIMIT: this sandbox enforces no REST limit (the `budget` benchmark
#: does), so ours is told of a raised limit that it never reaches, as bare discord.py assumes.
RAISED_GLOBAL_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Plan:
    """How much traffic a scale sends."""

    guilds: int
    rates: tuple[int, ...]
    step_s: float
    callers: int
    saturation_s: float
    warmup: int
    #: Also run ours on asyncio's own loop (EVENT_LOOP=asyncio), the loop before uvloop.
    before: bool = True

    def describe(self) -> str:
        """For the report."""
        rates = ", ".join(f"{r}/s" for r in self.rates)
        return (
            f"{self.guilds} guilds of 50 channels, 30 roles and 100 members on {SHARDS} shards "
            f"in 2 processes; each workload offered {rates} for {self.step_s:g} s each, then "
            f"saturated by {self.callers} members in a closed loop for {self.saturation_s:g} s, "
            f"after {self.warmup} unmeasured commands."
        )


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(
        guilds=12, rates=(20, 50), step_s=1.0, callers=16, saturation_s=1.5, warmup=8, before=False
    ),
    "small": Plan(
        guilds=100, rates=(20, 50, 100), step_s=5.0, callers=64, saturation_s=8.0, warmup=40
    ),
    "full": Plan(
        guilds=300,
        rates=(20, 50, 100, 200),
        step_s=15.0,
        callers=128,
        saturation_s=20.0,
        warmup=100,
    ),
}

Operation = Callable[[int], Awaitable[str]]


@dataclass
class Workload:
    """One kind of traffic for one bot."""

    name: str
    bot: str  # "ours" or "bare discord.py"
    make: Callable[[], Operation]  # a fresh operation for each step
    before_step: Callable[[], Awaitable[None]] | None = None
    limit: int | None = None  # at most this many commands in a saturation step


@dataclass
class Step:
    """One measured step: a workload at a load."""

    workload: Workload
    load: str
    run: Run
    bot_cpu: float  # CPU seconds of the bot processes during the step
    idle_cpu: float  # what they spend idle in as long (heartbeats, leases, budget refresh)

    @property
    def cpu_ms_per_answer(self) -> float:
        """Bot CPU per answered command above idle, in milliseconds."""
        done = answered(self.run)
        return (self.bot_cpu - self.idle_cpu) * 1000 / done if done else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """For the facts."""
        return {
            "workload": self.workload.name,
            "bot": self.workload.bot,
            "load": self.load,
            "sent": self.run.ops,
            "answered": answered(self.run),
            **self.run.as_dict(),
            "bot_cpu_share": self.bot_cpu / self.run.wall if self.run.wall else None,
            "bot_cpu_ms_per_answer_above_idle": self.cpu_ms_per_answer,
        }


class Traffic(Crowd):
    """Builds the operations: who sends what, and how its answer is recognised."""

    def slash(self, name: str, **fixed: Any) -> Operation:
        """`/name` by a random member (for transfer: to another random member)."""

        async def operation(i: int) -> str:
            if name == "transfer":
                seat, other = self.pair()
                options: dict[str, Any] = {"member": other.user_id, "amount": 1}
            else:
                seat, options = self.rng.choice(self.everyone), {}
            handle = await self.driver.slash(
                seat.guild, seat.channel, seat.member, name, **options, **fixed
            )
            return kind_of(await answer(self.watcher.interaction(handle), REPLY_TIMEOUT))

        return operation

    def chat(self) -> Operation:
        """A plain message from a member who has not spoken since the last reset; answered
        by the level-up message that mentions them."""
        order = self.everyone[:]
        self.rng.shuffle(order)
        turn = iter(order)

        async def operation(i: int) -> str:
            seat = next(turn, None)
            if seat is None:
                return "out of members"
            sent = await self.driver.send_message(
                seat.guild, seat.channel, seat.member, f"hello from {i}"
            )
            future = self.watcher.reply(sent, mention=True)
            return kind_of(await answer(future, REPLY_TIMEOUT))

        return operation

    def ping_message(self) -> Operation:
        """A message "ping" from a random member, answered by a reply to it."""

        async def operation(i: int) -> str:
            seat = self.rng.choice(self.everyone)
            sent = await self.driver.send_message(seat.guild, seat.channel, seat.member, "ping")
            return kind_of(await answer(self.watcher.reply(sent), REPLY_TIMEOUT))

        return operation


# --- the database behind ours ----------------------------------------------------------------


async def seed_members(dsn: str, everyone: list[Seat]) -> None:
    """A profile for every member: plenty of coins and one XP short of level 1."""
    async with connect(dsn) as conn:
        await copy_members(conn, [(s.guild.id, s.user_id, COINS) for s in everyone])
        await conn.execute("UPDATE members SET xp = $1", XP_BEFORE)


async def reset_xp(dsn: str, redis_url: str) -> None:
    """Everybody back to one XP short of level 1, cooldowns forgotten (between chat steps)."""
    async with connect(dsn) as conn:
        await conn.execute("UPDATE members SET xp = $1, level = 0, last_xp_at = NULL", XP_BEFORE)
    async with redis_client(redis_url) as client:
        await delete_keys(client, "cd:xp:*")


async def count(dsn: str, query: str) -> int:
    """One number from the database."""
    return int(await fetch_value(dsn, query))


# --- running the steps -----------------------------------------------------------------------


async def idle_share(bots: list[BotProcess]) -> float:
    """The bot processes' CPU share (1.0 = one core) while no command arrives."""
    cpu0, started = cpu(bots), time.monotonic()
    await asyncio.sleep(IDLE_S)  # the measurement itself: CPU spent over a quiet interval
    return (cpu(bots) - cpu0) / (time.monotonic() - started)


async def measure(
    workload: Workload, plan: Plan, bots: list[BotProcess], chat_check: str | None = None
) -> tuple[list[Step], list[dict[str, Any]]]:
    """Every offered rate, then saturation; `chat_check` counts the leveled-up rows."""
    idle = await idle_share(bots)
    steps: list[Step] = []
    checks: list[dict[str, Any]] = []
    loads: list[tuple[str, int | None]] = [(f"{r}/s", r) for r in plan.rates]
    loads.append((f"saturation ({plan.callers} members)", None))
    for load, rate in loads:
        if workload.before_step is not None:
            await workload.before_step()
        progress(f"{workload.bot}: {workload.name} at {load}")
        cpu0 = cpu(bots)
        operation = workload.make()
        profile = profiling(workload, bots[0], plan.saturation_s) if rate is None else None
        async with profile or nullcontext():
            with quiet_gc():
                if rate is None:
                    run = await closed_loop(
                        operation, plan.callers, ops=workload.limit, seconds=plan.saturation_s
                    )
                else:
                    run = await open_loop(operation, rate, plan.step_s)
        steps.append(Step(workload, load, run, cpu(bots) - cpu0, idle * run.wall))
        if chat_check is not None:
            leveled = await count(chat_check, "SELECT count(*) FROM members WHERE level >= 1")
            checks.append({"load": load, "level_ups_seen": run.outcomes["ok"], "rows": leveled})
    return steps, checks


def profiling(workload: Workload, bot: BotProcess, seconds: float) -> Profile | None:
    """A py-spy profile of `bot` for the step, when BENCH_PROFILE names a directory for it."""
    folder = os.environ.get("BENCH_PROFILE")
    if not folder:
        return None
    name = re.sub(r"[^a-z0-9]+", "-", f"{workload.bot} {workload.name}".lower()).strip("-")
    return Profile(bot.pid, Path(folder) / name, seconds)


async def warm_up(operations: list[Operation], count_each: int) -> None:
    """Unmeasured commands (pools, caches, first-time paths)."""
    for operation in operations:
        await closed_loop(operation, 4, ops=count_each)


#: Our bot as it runs by default, and on the event loop it had before (asyncio's own).
OURS, OURS_BEFORE = "ours", "ours, asyncio loop (before)"
#: The environment of each of our variants.
VARIANTS: dict[str, dict[str, str]] = {OURS: {}, OURS_BEFORE: {"EVENT_LOOP": "asyncio"}}


async def run_ours(
    server: SandboxServer, traffic: Traffic, plan: Plan, pods: Pods, label: str = OURS
) -> tuple[list[Step], dict[str, Any]]:
    """Our bot in two processes (the variant `label`): transfer, balance and chat."""
    dsn = pods.db.dsn
    bots = [
        pods.guildbot(f"guildbot-{i}", server, TAIL, SHARD_IDS=json.dumps(ids), **VARIANTS[label])
        for i, ids in enumerate(PROCESS_SHARDS)
    ]
    facts: dict[str, Any] = {}
    try:
        await asyncio.gather(*(b.start() for b in bots))
        await asyncio.gather(*(b.wait_ready() for b in bots))
        progress(f"{label}: ready in 2 processes; warming up")
        await warm_up([traffic.slash("transfer"), traffic.slash("balance")], plan.warmup)
        warm_transfers = await count(dsn, "SELECT count(*) FROM ledger WHERE kind = 'transfer_out'")

        async def reset() -> None:
            await reset_xp(dsn, pods.redis_url)

        transfer = Workload("transfer", label, lambda: traffic.slash("transfer"))
        balance = Workload("balance", label, lambda: traffic.slash("balance"))
        chat = Workload(
            "chat (XP, level-up)",
            label,
            traffic.chat,
            before_step=reset,
            limit=len(traffic.everyone),  # each member speaks once per step
        )
        steps: list[Step] = []
        for workload in (transfer, balance):
            measured, _ = await measure(workload, plan, bots)
            steps += measured
        measured, facts["chat_checks"] = await measure(chat, plan, bots, chat_check=dsn)
        steps += measured
        ok_transfers = sum(s.run.outcomes["ok"] for s in steps if s.workload is transfer)
        facts["transfers_answered_ok"] = ok_transfers
        facts["ledger_transfers"] = (
            await count(dsn, "SELECT count(*) FROM ledger WHERE kind = 'transfer_out'")
            - warm_transfers
        )
        facts["bot_errors_logged"] = sum(len(b.errors()) for b in bots)
    finally:
        await stop_all(bots)
    return steps, facts


async def run_bare(server: SandboxServer, traffic: Traffic, plan: Plan, pods: Pods) -> list[Step]:
    """The bare discord.py bot in two processes: /ping and a message "ping"."""
    bots: list[BotProcess] = []
    try:
        for i, ids in enumerate(PROCESS_SHARDS):
            bot = pods.barebot(
                f"barebot-{i}",
                server,
                SHARD_IDS=json.dumps(ids),
                BARE_MODE="ping",
                BARE_SYNC="1" if i == 0 else "0",
            )
            bots.append(bot)
            await bot.start()
            await bot.wait_log("bare bot ready", within=60)
        progress("the bare bot is ready in 2 processes; warming up")
        await warm_up([traffic.slash("ping"), traffic.ping_message()], plan.warmup)
        slash = Workload("/ping", "bare discord.py", lambda: traffic.slash("ping"))
        message = Workload("message ping", "bare discord.py", traffic.ping_message)
        steps: list[Step] = []
        for workload in (slash, message):
            measured, _ = await measure(workload, plan, bots)
            steps += measured
    finally:
        await stop_all(bots)
    return steps


async def run(ctx: RunContext) -> Result:
    """Ours, then the bare bot, through one sandbox."""
    plan = PLANS[ctx.scale]
    world = build_world(plan.guilds, 50, 30, 100, seed=7, shard_count=SHARDS)
    result = ctx.result(plan.describe())
    steps, facts = await run_all(ctx, plan, world)
    result.tables += [steps_table(steps), ceiling_table(steps)]
    folder = os.environ.get("BENCH_PROFILE")
    if folder:
        result.tables.append(profile_table(Path(folder)))
    result.facts.update(facts)
    result.facts["steps"] = [s.as_dict() for s in steps]
    result.notes += notes(facts)
    return result


async def run_all(ctx: RunContext, plan: Plan, world: World) -> tuple[list[Step], dict[str, Any]]:
    """Servers, sandbox and watcher around ours and the bare bot."""
    async with (
        pods_for(
            ctx,
            SHARD_COUNT=str(SHARDS),
            IDENTIFY_WINDOW_S=str(WINDOW),
            REST_GLOBAL_LIMIT=str(RAISED_GLOBAL_LIMIT),
        ) as pods,
        sandbox(world, identify_window=WINDOW, interaction_deadline=60) as server,
    ):
        watcher = ReplyWatcher(server)
        watcher.start()
        try:
            traffic = Traffic(server, watcher, seed=20261127)
            await seed_members(pods.db.dsn, traffic.everyone)
            await publish_commands(server, pods.db.url)
            # The variant before first: whatever the sandbox slows down with goes against ours.
            labels = [OURS_BEFORE, OURS] if plan.before else [OURS]
            runs = {label: await run_ours(server, traffic, plan, pods, label) for label in labels}
            bare = await run_bare(server, traffic, plan, pods)
        finally:
            await watcher.stop()
    facts = runs[OURS][1]
    if OURS_BEFORE in runs:
        facts[OURS_BEFORE] = runs[OURS_BEFORE][1]
    steps = [step for label in reversed(labels) for step in runs[label][0]]
    return steps + bare, facts


def notes(facts: dict[str, Any]) -> list[str]:
    """What the reader needs to read the tables."""
    return [
        "PostgreSQL: the shared server above (a database of the run's own); Redis: a "
        "redis-server of the run's own (same binary as above), since bot processes keep fixed "
        "keys (leases, identify queue) that concurrent runs would share.",
        "answered/s: answers over the time from the first event to the last answer; p50/p99 "
        "from the moment each event was due to be sent (the open loop sends on schedule, so a "
        "slow bot shows as latency, not as a slower sender) to the moment the sandbox recorded "
        "the bot's answer.",
        "bot CPU: CPU time of the two bot processes over wall time (100% = one core); bot CPU "
        "ms per answer: that CPU time minus what the bots spend idle in as long (measured for "
        f"{IDLE_S:g} s before each workload: heartbeats, leases, the REST budget's refresh), over "
        "the commands answered; sandbox CPU: the benchmark process, which runs the sandbox "
        "(gateway, REST) and the simulated members; machine CPU: all cores, including "
        "PostgreSQL and Redis.",
        "This sandbox enforces no REST rate limit, and bare discord.py assumes none until it is "
        f"answered 429; ours is given REST_GLOBAL_LIMIT={RAISED_GLOBAL_LIMIT:,} (a raised limit, "
        "as large bots get) so that its REST budget, which still takes its shared Redis "
        "round trips, does not hold it to Discord's default 50/s. What the budget does at the "
        "limit is the `budget` benchmark's subject.",
        "chat: each message comes from a member one XP short of level 1 who has not spoken "
        "since the last reset, so it costs the whole XP path (Redis cooldown, row lock, "
        "update) and a level-up message, which is its answer; the database had as many members "
        "at level 1 as level-up messages were seen. A message that earns no level costs the "
        "same minus the level-up message (and a message within the 60 s cooldown stops at "
        "Redis).",
        "Transfers: /transfer amount 1 to a random member of the same guild; the ledger holds "
        f"exactly one transfer per answered command ({ledger_check(facts)}).",
        f"{OURS_BEFORE}: the same bot with EVENT_LOOP=asyncio, the event loop it ran on before "
        "uvloop became the default, in the same run.",
    ]


def ledger_check(facts: dict[str, Any]) -> str:
    """ "N rows for M answers", for each variant of ours that ran."""
    runs = {OURS: facts, OURS_BEFORE: facts.get(OURS_BEFORE)}
    return "; ".join(
        f"{label}: {run['ledger_transfers']:,} rows for {run['transfers_answered_ok']:,} answers"
        for label, run in runs.items()
        if run
    )


def answered(run: Run) -> int:
    """Commands the bot answered (with a result or an error reply)."""
    return run.outcomes["ok"] + run.outcomes["error"]


def answered_rate(run: Run) -> float:
    """Answers per second over the step's wall time."""
    return answered(run) / run.wall if run.wall else float("nan")


def steps_table(steps: list[Step]) -> Table:
    """Every step."""
    table = Table(
        "Commands end to end (4 shards in 2 processes)",
        [
            "bot",
            "workload",
            "load",
            "sent",
            "answered",
            "errors",
            "answered/s",
            "p50 ms",
            "p99 ms",
            "bot CPU",
            "bot CPU ms per answer",
            "sandbox CPU",
            "machine CPU",
        ],
    )
    for step in steps:
        run = step.run
        table.add(
            step.workload.bot,
            step.workload.name,
            step.load,
            run.ops,
            answered(run),
            run.outcomes["error"],
            answered_rate(run),
            run.p50_ms,
            run.p99_ms,
            f"{step.bot_cpu / run.wall:.0%}",
            step.cpu_ms_per_answer,
            f"{run.cpu_share:.0%}",
            f"{run.machine_share:.0%}",
        )
    return table


def profile_table(folder: Path) -> Table:
    """Where the profiled bot process spent its samples at saturation, per workload."""
    profiles = {path.stem: read_stacks(path) for path in sorted(folder.glob("*.txt"))}
    table = Table(
        "Where a bot process's CPU goes at saturation (py-spy, innermost frame)",
        ["innermost frame in", *profiles],
    )
    shares = {name: by_category(stacks) for name, stacks in profiles.items()}
    totals = {name: sum(stacks.values()) or 1 for name, stacks in profiles.items()}
    for category in [name for name, _ in CATEGORIES] + [OTHER]:
        table.add(category, *(f"{shares[n][category] / totals[n]:.0%}" for n in profiles))
    table.add("samples", *(sum(stacks.values()) for stacks in profiles.values()))
    return table


def ceiling_table(steps: list[Step]) -> Table:
    """Saturation throughput and CPU of each of our workloads against the bare bot's ping."""
    saturated = {
        (s.workload.bot, s.workload.name): s for s in steps if s.load.startswith("saturation")
    }
    table = Table(
        "Ceiling: answered/s at saturation",
        [
            "workload",
            "bot",
            "answered/s",
            "bot CPU ms per answer",
            "bare discord.py",
            "bare answered/s",
            "bare CPU ms per answer",
            "vs bare",
        ],
    )
    for name, baseline in (
        ("transfer", "/ping"),
        ("balance", "/ping"),
        ("chat (XP, level-up)", "message ping"),
    ):
        bare = saturated.get(("bare discord.py", baseline))
        for label in VARIANTS:
            ours = saturated.get((label, name))
            if ours is None or bare is None:
                continue
            ours_rate, bare_rate = answered_rate(ours.run), answered_rate(bare.run)
            table.add(
                name,
                label,
                ours_rate,
                ours.cpu_ms_per_answer,
                baseline,
                bare_rate,
                bare.cpu_ms_per_answer,
                ratio(ours_rate, bare_rate),
            )
    return table


BENCHMARK = Benchmark(
    "commands",
    "commands end to end through the sandbox: ours against a bare discord.py ping",
    run,
)
