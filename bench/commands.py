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

Baselines: a bare discord.py AutoShardedBot (bench/barebot.py), also 4 shards in 2 processes,
answering `/ping` with "pong" and a message "ping" with a reply: the ceiling of the sandbox +
discord.py pipeline on this machine, with no database, Redis or cogs; and ours before: with
BENCH_BEFORE=<git revision>, the bot's code at that revision (extracted from git and run from
there), else ours on asyncio's own event loop (EVENT_LOOP=asyncio), as it ran before uvloop.

Every bot has a sandbox of its own (the same world) and runs from the start; within each step
the bots take turns in slices (`Plan.rounds`), so that machine drift hits them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
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
from testsupport.bots import REPO
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
    #: Each step's time is cut into this many slices per bot, the bots taking turns.
    rounds: int = 3
    #: Also run ours as it was before (`Before`).
    before: bool = True

    def describe(self) -> str:
        """For the report."""
        rates = ", ".join(f"{r}/s" for r in self.rates)
        return (
            f"{self.guilds} guilds of 50 channels, 30 roles and 100 members on {SHARDS} shards "
            f"in 2 processes; each workload offered {rates} for {self.step_s:g} s each, then "
            f"saturated by {self.callers} members in a closed loop for {self.saturation_s:g} s "
            f"(each step in {self.rounds} slices, the bots taking turns), "
            f"after {self.warmup} unmeasured commands."
        )


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(
        guilds=12,
        rates=(20, 50),
        step_s=1.0,
        callers=16,
        saturation_s=1.5,
        warmup=8,
        rounds=1,
        before=False,
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
    level_ups: Callable[[], Awaitable[int]] | None = None  # chat: members at level 1 now


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


@dataclass
class Contestant:
    """One bot (ours, a variant of ours, or the bare bot) with a sandbox of its own."""

    label: str
    server: SandboxServer
    traffic: Traffic
    bots: list[BotProcess] = field(default_factory=list)
    pods: Pods | None = None  # ours: its database and Redis
    env: dict[str, str] = field(default_factory=dict)  # ours: its variant's environment

    @property
    def dsn(self) -> str:
        """Ours: its database."""
        assert self.pods is not None
        return self.pods.db.dsn


async def idle_shares(contestants: list[Contestant]) -> dict[str, float]:
    """Each contestant's bot processes' CPU share (1.0 = one core) while no command arrives."""
    before, started = {c.label: cpu(c.bots) for c in contestants}, time.monotonic()
    await asyncio.sleep(IDLE_S)  # the measurement itself: CPU spent over a quiet interval
    wall = time.monotonic() - started
    return {c.label: (cpu(c.bots) - before[c.label]) / wall for c in contestants}


async def measure(
    entries: list[tuple[Contestant, Workload]], plan: Plan
) -> tuple[list[Step], list[dict[str, Any]]]:
    """Every offered rate, then saturation, the entries taking turns in `plan.rounds` slices.

    Taking turns exposes every bot to the same state of the machine (this one is shared and
    its speed drifts by tens of percent between minutes) and of the sandboxes: consecutive
    runs of the whole benchmark once differed by 1.6x on the same bot run one after the other.
    """
    idle = await idle_shares(list({c.label: c for c, _ in entries}.values()))
    steps: list[Step] = []
    checks: list[dict[str, Any]] = []
    loads: list[tuple[str, int | None]] = [(f"{r}/s", r) for r in plan.rates]
    loads.append((f"saturation ({plan.callers} members)", None))
    for load, rate in loads:
        for _, workload in entries:
            if workload.before_step is not None:
                await workload.before_step()
        operations = [workload.make() for _, workload in entries]
        runs: list[list[Run]] = [[] for _ in entries]
        spent = [0.0 for _ in entries]
        length = (plan.step_s if rate is not None else plan.saturation_s) / plan.rounds
        progress(f"{load}: " + ", ".join(f"{c.label} {w.name}" for c, w in entries))
        for turn in range(plan.rounds):
            for i in [(turn + k) % len(entries) for k in range(len(entries))]:
                (contestant, workload), done = entries[i], sum(r.ops for r in runs[i])
                left = None if workload.limit is None else workload.limit - done
                if left == 0:
                    continue
                first_saturated = rate is None and turn == 0
                profile = profiling(contestant, workload, length) if first_saturated else None
                cpu0 = cpu(contestant.bots)
                async with profile or nullcontext():
                    with quiet_gc():
                        if rate is None:
                            run = await closed_loop(
                                operations[i], plan.callers, ops=left, seconds=length
                            )
                        else:
                            run = await open_loop(operations[i], rate, length)
                spent[i] += cpu(contestant.bots) - cpu0
                runs[i].append(run)
        for i, (contestant, workload) in enumerate(entries):
            pooled = Run.pooled(runs[i])
            steps.append(
                Step(workload, load, pooled, spent[i], idle[contestant.label] * pooled.wall)
            )
            if workload.level_ups is not None:
                rows = await workload.level_ups()
                checks.append(
                    {
                        "bot": contestant.label,
                        "load": load,
                        "level_ups_seen": pooled.outcomes["ok"],
                        "rows": rows,
                    }
                )
    return steps, checks


def profiling(contestant: Contestant, workload: Workload, seconds: float) -> Profile | None:
    """A py-spy profile of the contestant's first bot process for one slice of saturation,
    when BENCH_PROFILE names a directory for it."""
    folder = os.environ.get("BENCH_PROFILE")
    if not folder:
        return None
    name = re.sub(r"[^a-z0-9]+", "-", f"{contestant.label} {workload.name}".lower()).strip("-")
    return Profile(contestant.bots[0].pid, Path(folder) / name, seconds)


async def warm_up(operations: list[Operation], count_each: int) -> None:
    """Unmeasured commands (pools, caches, first-time paths)."""
    for operation in operations:
        await closed_loop(operation, 4, ops=count_each)


OURS = "ours"
BARE = "bare discord.py"


@dataclass(frozen=True, slots=True)
class Before:
    """Ours as it was, measured in turns with ours: its label and environment."""

    label: str
    env: dict[str, str]
    revision: str | None = None

    @classmethod
    def chosen(cls, stack: contextlib.ExitStack) -> Before:
        """The code at BENCH_BEFORE (a git revision), extracted into a temporary folder and
        put first on PYTHONPATH; without it, ours on asyncio's own loop."""
        revision = os.environ.get("BENCH_BEFORE")
        if not revision:
            return cls("ours, asyncio loop (before)", {"EVENT_LOOP": "asyncio"})
        tree = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-before-"))
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        short = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", revision],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return cls(f"ours at {short} (before)", {"PYTHONPATH": tree}, short)

    def note(self) -> str:
        """What the variant is, for the report."""
        if self.revision is None:
            return (
                f"{self.label}: the same bot with EVENT_LOOP=asyncio, the event loop it ran on "
                "before uvloop became the default, measured in turns with it."
            )
        return (
            f"{self.label}: the bot's code at revision {self.revision} (BENCH_BEFORE), run from a "
            "copy extracted from git, with its own sandbox, database and Redis, measured in "
            "turns with ours."
        )


async def start_ours(contestant: Contestant, plan: Plan) -> None:
    """Our bot in two processes (the variant the contestant's label names), warmed up."""
    pods, server, traffic = contestant.pods, contestant.server, contestant.traffic
    assert pods is not None
    await seed_members(pods.db.dsn, traffic.everyone)
    await publish_commands(server, pods.db.url)
    contestant.bots = [
        pods.guildbot(f"guildbot-{i}", server, TAIL, SHARD_IDS=json.dumps(ids), **contestant.env)
        for i, ids in enumerate(PROCESS_SHARDS)
    ]
    await asyncio.gather(*(b.start() for b in contestant.bots))
    await asyncio.gather(*(b.wait_ready() for b in contestant.bots))
    progress(f"{contestant.label}: ready in 2 processes; warming up")
    await warm_up([traffic.slash("transfer"), traffic.slash("balance")], plan.warmup)


async def start_bare(contestant: Contestant, pods: Pods, plan: Plan) -> None:
    """The bare discord.py bot in two processes, warmed up."""
    for i, ids in enumerate(PROCESS_SHARDS):
        bot = pods.barebot(
            f"barebot-{i}",
            contestant.server,
            SHARD_IDS=json.dumps(ids),
            BARE_MODE="ping",
            BARE_SYNC="1" if i == 0 else "0",
        )
        contestant.bots.append(bot)
        await bot.start()
        await bot.wait_log("bare bot ready", within=60)
    progress("the bare bot is ready in 2 processes; warming up")
    traffic = contestant.traffic
    await warm_up([traffic.slash("ping"), traffic.ping_message()], plan.warmup)


def workloads_of(contestant: Contestant) -> dict[str, Workload]:
    """What a contestant is measured on, by name."""
    traffic, label = contestant.traffic, contestant.label
    if label == BARE:
        return {
            "/ping": Workload("/ping", label, lambda: traffic.slash("ping")),
            "message ping": Workload("message ping", label, traffic.ping_message),
        }
    dsn, redis_url = contestant.dsn, contestant.pods.redis_url if contestant.pods else ""

    async def reset() -> None:
        await reset_xp(dsn, redis_url)

    async def level_ups() -> int:
        return await count(dsn, "SELECT count(*) FROM members WHERE level >= 1")

    return {
        "transfer": Workload("transfer", label, lambda: traffic.slash("transfer")),
        "balance": Workload("balance", label, lambda: traffic.slash("balance")),
        "chat (XP, level-up)": Workload(
            "chat (XP, level-up)",
            label,
            traffic.chat,
            before_step=reset,
            limit=len(traffic.everyone),  # each member speaks once per step
            level_ups=level_ups,
        ),
    }


async def transfers_in_ledger(contestant: Contestant) -> int:
    """Transfers in a contestant's ledger."""
    return await count(contestant.dsn, "SELECT count(*) FROM ledger WHERE kind = 'transfer_out'")


async def run(ctx: RunContext) -> Result:
    """Ours (and its variant before), and the bare bot, each through a sandbox of its own."""
    plan = PLANS[ctx.scale]
    result = ctx.result(plan.describe())
    with contextlib.ExitStack() as trees:
        before = Before.chosen(trees)
        steps, facts = await run_all(ctx, plan, before)
    result.tables += [steps_table(steps), ceiling_table(steps, [OURS, before.label])]
    folder = os.environ.get("BENCH_PROFILE")
    if folder:
        result.tables.append(profile_table(Path(folder)))
    result.facts.update(facts)
    result.facts["steps"] = [s.as_dict() for s in steps]
    result.notes += [*notes(facts), *([before.note()] if plan.before else [])]
    return result


async def run_all(ctx: RunContext, plan: Plan, before: Before) -> tuple[list[Step], dict[str, Any]]:
    """Servers, sandboxes and watchers around every contestant; the measured steps."""
    labels = [OURS, before.label, BARE] if plan.before else [OURS, BARE]
    shared = {
        "SHARD_COUNT": str(SHARDS),
        "IDENTIFY_WINDOW_S": str(WINDOW),
        "REST_GLOBAL_LIMIT": str(RAISED_GLOBAL_LIMIT),
    }
    async with contextlib.AsyncExitStack() as stack:
        contestants: list[Contestant] = []
        for label in labels:
            world = build_world(plan.guilds, 50, 30, 100, seed=7, shard_count=SHARDS)
            server = await stack.enter_async_context(
                sandbox(world, identify_window=WINDOW, interaction_deadline=60)
            )
            watcher = ReplyWatcher(server)
            watcher.start()
            stack.push_async_callback(watcher.stop)
            contestant = Contestant(label, server, Traffic(server, watcher, seed=20261127))
            if label == before.label:
                contestant.env = before.env
            if label != BARE:
                contestant.pods = await stack.enter_async_context(pods_for(ctx, **shared))
            contestants.append(contestant)
        by_label = {c.label: c for c in contestants}
        ours = [c for c in contestants if c.label != BARE]
        try:
            for contestant in ours:
                await start_ours(contestant, plan)
            assert ours[0].pods is not None
            await start_bare(by_label[BARE], ours[0].pods, plan)
            warm = {c.label: await transfers_in_ledger(c) for c in ours}
            work = {c.label: workloads_of(c) for c in contestants}
            groups = [
                [
                    *((c, work[c.label]["transfer"]) for c in ours),
                    (by_label[BARE], work[BARE]["/ping"]),
                ],
                [(c, work[c.label]["balance"]) for c in ours],
                [
                    *((c, work[c.label]["chat (XP, level-up)"]) for c in ours),
                    (by_label[BARE], work[BARE]["message ping"]),
                ],
            ]
            steps: list[Step] = []
            facts: dict[str, Any] = {"chat_checks": []}
            for group in groups:
                measured, checks = await measure(group, plan)
                steps += measured
                facts["chat_checks"] += checks
            facts["transfers"] = {
                c.label: {
                    "answered_ok": sum(
                        s.run.outcomes["ok"]
                        for s in steps
                        if s.workload.bot == c.label and s.workload.name == "transfer"
                    ),
                    "in_ledger": await transfers_in_ledger(c) - warm[c.label],
                }
                for c in ours
            }
            facts["bot_errors_logged"] = sum(len(b.errors()) for c in ours for b in c.bots)
        finally:
            await stop_all([b for c in contestants for b in c.bots])
    order = {label: i for i, label in enumerate(labels)}
    steps.sort(key=lambda s: order[s.workload.bot])  # stable: each bot's steps stay in order
    return steps, facts


def notes(facts: dict[str, Any]) -> list[str]:
    """What the reader needs to read the tables."""
    return [
        "Each bot has a sandbox of its own (the same generated world), and each of ours a "
        "database of its own on the shared PostgreSQL server above and a redis-server of its "
        "own (same binary as above), since bot processes keep fixed keys (leases, identify "
        "queue). Every bot runs from the start; within each step the bots take turns "
        "(round-robin slices of the step's time), so that each sees the same machine.",
        "answered/s: answers over the time from the first event to the last answer; p50/p99 "
        "from the moment each event was due to be sent (the open loop sends on schedule, so a "
        "slow bot shows as latency, not as a slower sender) to the moment the sandbox recorded "
        "the bot's answer.",
        "bot CPU: CPU time of the two bot processes over wall time (100% = one core); bot CPU "
        "ms per answer: that CPU time minus what the bots spend idle in as long (measured for "
        f"{IDLE_S:g} s, all bots idle, before each group of workloads: heartbeats, leases, "
        "the REST budget's refresh), over "
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
    ]


def ledger_check(facts: dict[str, Any]) -> str:
    """ "N rows for M answers", for each variant of ours."""
    return "; ".join(
        f"{label}: {seen['in_ledger']:,} rows for {seen['answered_ok']:,} answers"
        for label, seen in facts["transfers"].items()
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


def ceiling_table(steps: list[Step], ours_labels: list[str]) -> Table:
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
        for label in ours_labels:
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
