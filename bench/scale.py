"""scale: a shard moved between pods at Discord's sizes, in each HANDOVER_MODE.

SHARD_COUNT=4 over a world of generated guilds (50 channels, 30 roles, 100 members each at full
scale: 2,500 guilds a shard) in a sandbox that enforces Discord's global REST limit (50/s). Per
mode, a fresh sandbox and two pods (`python -m app run`, live rebalancing); slash commands flow
round all the guilds meanwhile (after one command in every guild: first-sight profile inserts
are not part of any move). Then a third pod joins (scale 2 -> 3: one shard moves to it) and
leaves again on SIGTERM (3 -> 2: that shard moves back). For each move:

- unserved: from the park to the new owner's RESUMED (or READY), the time with no session;
- park -> all answered: from the moment the old owner parked the shard (before it writes a
  snapshot and releases the lease) until a /balance sent in every one of its guilds (once the
  new owner holds it, 50 in flight) was answered; a command not answered within 5 s is lost
  (Discord's window is 3 s); the same sweep once the pods settled again, with no move, is the
  baseline (the time one pod takes to answer that many commands);
- the REST calls that loaded the shard's guild state (GET guild, channels, own member) and the
  IDENTIFYs accepted for it, from its release until its last probe;
- the background commands: answered once, not answered, answered twice.

`eager` (today's REST hydration before RESUME) is the baseline, and `lazy` pays the same calls
spread over first events: at full scale both run on a tenth of the guilds per shard, since one
move then costs minutes of the global limit (the table says how many guilds each mode had).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import Pods, pods_for, rss_bytes
from bench.tables import Table
from bench.traffic import publish_commands, sandbox
from sandbox import SandboxServer
from sandbox.builders import build_world
from sandbox.driver import InteractionHandle
from testsupport.processes import BotProcess
from testsupport.rest_calls import guild_state_calls
from testsupport.waiting import wait_for

SHARDS = 4
EVERY_MODE = ("eager", "snapshot", "lazy", "identify")
IN_FLIGHT = 50
ANSWER_WITHIN = 5.0


@dataclass(frozen=True, slots=True)
class Plan:
    """Guilds per shard (full and for the REST modes), their size, the background rate, the
    lease TTL (a cold start after each mode's fresh Redis waits for one), the identify window
    (one per shard at a cold start), the modes run."""

    per_shard: int
    rest_per_shard: int
    channels: int
    roles: int
    members: int
    rate: float
    lease_ttl: float
    identify_window: float = 0.2
    modes: tuple[str, ...] = EVERY_MODE


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(6, 6, 10, 5, 10, 5, 2, 0.05, ("eager", "snapshot")),  # CI: baseline, default
    "small": Plan(250, 250, 50, 30, 100, 10, 10),
    "full": Plan(2_500, 250, 50, 30, 100, 20, 10),
}


@dataclass
class Move:
    """One shard changing hands."""

    mode: str
    guilds: int
    step: str
    shard: int
    #: From the park to the new owner's RESUMED (or READY): the shard had no session.
    unserved_s: float
    ready_s: float
    probes: int
    lost: int
    twice: int
    rest_calls: int
    identifies: int
    #: The pods' handover log lines of the shard, seconds after the park.
    timeline: list[str] = field(default_factory=list)


@dataclass
class Background:
    """Slash commands round every guild for the whole run of a mode."""

    server: SandboxServer
    rate: float
    handles: list[InteractionHandle] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        ids = list(self.server.world.guilds)
        i = 0
        while True:
            self.handles.append(await probe(self.server, ids[i % len(ids)]))
            i += 1
            await asyncio.sleep(1 / self.rate)  # the offered rate

    async def stop(self) -> dict[str, int]:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        await asyncio.gather(*(answered(h) for h in self.handles))  # one window for all, not each
        counts = [len(h.history) for h in self.handles]
        return {
            "sent": len(counts),
            "once": counts.count(1),
            "unanswered": counts.count(0),
            "twice": sum(1 for c in counts if c > 1),
        }


async def probe(server: SandboxServer, guild_id: int) -> InteractionHandle:
    """/balance as the guild's owner in its #general."""
    guild = server.world.guilds[guild_id]
    return await server.driver.slash(guild, "general", guild.owner_id, "balance")


async def answered(handle: InteractionHandle) -> bool:
    """Whether the command was answered within ANSWER_WITHIN (else it is lost)."""
    try:
        await handle.wait_response(timeout=ANSWER_WITHIN)
    except TimeoutError:
        return False
    return True


def shard_of(guild_id: int) -> int:
    return (guild_id >> 22) % SHARDS


def guilds_on(server: SandboxServer, shard: int) -> list[int]:
    return [g for g in server.world.guilds if shard_of(g) == shard]


async def sweep(server: SandboxServer, guild_ids: list[int]) -> tuple[float, int, int]:
    """A /balance in every guild, IN_FLIGHT at a time: (when all were answered, lost, answered
    twice)."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    last = 0.0

    async def one(guild_id: int) -> InteractionHandle:
        nonlocal last
        async with gate:
            handle = await probe(server, guild_id)
            if await answered(handle):
                last = max(last, time.time())
            return handle

    handles = await asyncio.gather(*(one(g) for g in guild_ids))
    lost = sum(1 for h in handles if not h.history)
    end = time.time() if lost else last  # with a command lost, the whole sweep counts
    return end, lost, sum(1 for h in handles if len(h.history) > 1)


def lines_with(proc: BotProcess, text: str) -> list[str]:
    """The process's log lines that contain `text` (it keeps them all: a burst of warnings
    about late commands must not push a handover's lines out)."""
    return [line for line in proc.lines if text in line]


def logged_since(procs: list[BotProcess], text: str, since: float) -> tuple[str, float] | None:
    """The first log line containing `text` written at or after `since` (Unix time), with
    its time."""
    found = []
    for proc in procs:
        for line in lines_with(proc, text):
            stamp = datetime.fromisoformat(json.loads(line)["time"]).timestamp()
            if stamp >= since:
                found.append((line, stamp))
    return min(found, key=lambda f: f[1]) if found else None


async def measure_move(
    server: SandboxServer, procs: list[BotProcess], mode: str, step: str, since: float
) -> Move:
    """The next shard to move after `since`: its release (logged by the pod that parked it),
    its new owner serving it, then a probe in each of its guilds."""
    within = 600.0
    line, stamp = await wait_for(
        lambda: logged_since(procs, "parked and released", since), within=within, interval=0.1
    )
    shard = int(json.loads(line)["message"].split()[1].rstrip(":"))
    _, released = logged_since(procs, f"shard {shard}: parked", since) or (line, stamp)
    _, serving = await wait_for(
        lambda: (
            logged_since(procs, f"shard {shard} resumed", released)
            or logged_since(procs, f"shard {shard} ready", released)
        ),
        within=within,
        interval=0.1,
    )
    guild_ids = guilds_on(server, shard)
    last, lost, twice = await sweep(server, guild_ids)
    timeline = handover_lines(procs, shard, released)
    identified = [
        r
        for r in server.driver.identifies()
        if r.accepted and r.shard_id == shard and r.time >= released
    ]
    return Move(
        mode,
        len(guild_ids),
        step,
        shard,
        max(0.0, serving - released),
        max(0.0, last - released),
        len(guild_ids),
        lost,
        twice,
        len(guild_state_calls(server, released)),
        len(identified),
        timeline,
    )


#: What the pods log about a shard's handover (app/bot/handover.py, sharding.py, ...).
HANDOVER_WORDS = ("encoded", "parked", "snapshot", "lease taken", "resum", "rebuilt", "ready")


def handover_lines(procs: list[BotProcess], shard: int, released: float) -> list[str]:
    """The pods' log lines about `shard` from a few seconds before its park on, timed from it."""
    lines = []
    for proc in procs:
        for line in lines_with(proc, f"shard {shard}"):
            record = json.loads(line)
            stamp = datetime.fromisoformat(record["time"]).timestamp()
            if stamp >= released - 5 and any(w in record["message"] for w in HANDOVER_WORDS):
                lines.append((stamp, f"{stamp - released:+7.2f} s  {record['message']}"))
    return [text for _, text in sorted(lines)]


def _share(proc: BotProcess) -> int | None:
    """How many shards the pod last said it converged on."""
    lines = lines_with(proc, "converged: shards [")
    if not lines:
        return None
    inside = lines[-1].split("converged: shards [", 1)[1].split("]", 1)[0]
    return len([x for x in inside.split(",") if x.strip()])


async def converged(server: SandboxServer, pods: list[BotProcess], within: float) -> None:
    """The pods' latest shares add up to every shard, and each shard has one session."""

    def done() -> bool | None:
        shares = [_share(p) for p in pods]
        if None in shares or sum(s or 0 for s in shares) != SHARDS:
            return None
        holders = server.driver.shard_holders()
        return all(len(holders.get(s, [])) == 1 for s in range(SHARDS)) or None

    await wait_for(done, within=within, interval=0.2)


async def run_mode(ctx: RunContext, pods: Pods, mode: str, per_shard: int) -> dict[str, Any]:
    """One mode on a fresh sandbox: two pods, scale to three and back; the two moves."""
    plan = PLANS[ctx.scale]
    world = build_world(
        per_shard * SHARDS,
        plan.channels,
        plan.roles,
        plan.members,
        7,
        shard_count=SHARDS,
        lazy=True,
    )
    within = 120 + per_shard * 0.2
    async with sandbox(world, identify_window=plan.identify_window, global_limit=50) as server:
        await publish_commands(server, pods.db.url)
        procs = {
            i: pods.guildbot(f"{mode}-{i}", server, None, POD_INDEX=str(i), HANDOVER_MODE=mode)
            for i in range(3)
        }
        try:
            await asyncio.gather(procs[0].start(), procs[1].start())
            await converged(server, [procs[0], procs[1]], within)
            # Every guild's first command creates its owner's profile: done before the moves,
            # so that the sweeps after them measure the handover, not first-sight inserts.
            progress(f"{mode}: a first command in each of {len(world.guilds)} guilds")
            await sweep(server, list(world.guilds))
            background = Background(server, plan.rate)
            background.start()
            progress(f"{mode}: 2 -> 3 pods")
            trigger = time.time()
            await procs[2].start()
            up = await measure_move(server, list(procs.values()), mode, "2 -> 3", trigger)
            await converged(server, list(procs.values()), within)
            progress(f"{mode}: 3 -> 2 pods")
            trigger = time.time()
            stopping = asyncio.create_task(procs[2].stop())
            down = await measure_move(server, list(procs.values()), mode, "3 -> 2", trigger)
            await stopping
            await converged(server, [procs[0], procs[1]], within)
            rss = [rss_bytes(procs[i].pid) for i in (0, 1)]
            steady = await timed_sweep(server, up.shard)
            counts = await background.stop()
        finally:
            for proc in procs.values():
                await proc.kill()
    return {
        "moves": [up, down],
        "background": counts,
        "rss_mb": max(rss) / 2**20,
        "steady_s": steady,
    }


async def timed_sweep(server: SandboxServer, shard: int) -> float:
    """Seconds for a sweep of the shard's guilds while it stays put (the moves' baseline)."""
    started = time.time()
    end, _, _ = await sweep(server, guilds_on(server, shard))
    return end - started


async def run(ctx: RunContext) -> Result:
    """Every mode in turn; eager first, as the baseline."""
    plan = PLANS[ctx.scale]
    result = ctx.result(
        f"SHARD_COUNT={SHARDS}, {plan.per_shard} guilds a shard ({plan.channels} channels, "
        f"{plan.roles} roles, {plan.members} members each; eager and lazy: "
        f"{plan.rest_per_shard}), the sandbox at Discord's global limit (50 requests/s); 2 pods, "
        f"a third joins and leaves on SIGTERM; {plan.rate:g} slash commands/s round every guild."
    )
    runs: dict[str, dict[str, Any]] = {}
    shared = {
        "SHARD_COUNT": str(SHARDS),
        "IDENTIFY_WINDOW_S": f"{plan.identify_window:g}",
        "LEASE_TTL_S": f"{plan.lease_ttl:g}",
    }
    async with pods_for(ctx, **shared, REBALANCE_GRACE_S="30", LOG_LEVEL="INFO") as pods:
        for mode in plan.modes:
            per_shard = plan.rest_per_shard if mode in ("eager", "lazy") else plan.per_shard
            progress(f"{mode}: {per_shard} guilds a shard")
            runs[mode] = await run_mode(ctx, pods, mode, per_shard)
            await flush_redis(pods.redis_url)
    table = Table(
        "Shard handover by HANDOVER_MODE (each shard move: parked until a command in every one "
        "of its guilds was answered; the same sweep with no move as the baseline)",
        [
            "mode",
            "guilds/shard",
            "move",
            "unserved s",
            "park -> all answered s",
            "same sweep, no move s",
            "guild REST calls",
            "calls/guild",
            "identifies",
            "probes lost",
            "answered twice",
            "RSS/pod MB",
        ],
    )
    for mode, ran in runs.items():
        for move in ran["moves"]:
            table.add(
                mode,
                move.guilds,
                f"{move.step} (shard {move.shard})",
                move.unserved_s,
                move.ready_s,
                ran["steady_s"],
                move.rest_calls,
                move.rest_calls / move.guilds,
                move.identifies,
                move.lost,
                move.twice,
                ran["rss_mb"],
            )
    background = Table(
        "Background slash commands during each mode's run",
        ["mode", "sent", "answered once", "not answered", "answered twice"],
    )
    for mode, ran in runs.items():
        b = ran["background"]
        background.add(mode, b["sent"], b["once"], b["unanswered"], b["twice"])
    result.tables += [table, background]
    result.facts["moves"] = [vars(m) for ran in runs.values() for m in ran["moves"]]
    for ran in runs.values():
        for move in ran["moves"]:
            progress(f"{move.mode} {move.step}, shard {move.shard}:")
            for text in move.timeline:
                progress(f"    {text}")
    result.facts["background"] = {mode: ran["background"] for mode, ran in runs.items()}
    result.notes += [
        "unserved: from the old owner's park to the new owner's RESUMED (or READY) in its log: "
        "the shard had no session (commands sent meanwhile wait in Discord, or time out).",
        "park -> all answered: from the moment the old owner logged the shard parked (before "
        "it writes a snapshot and releases the lease) to the last answer of a /balance sent in "
        "each of its guilds once the new owner logged it resumed (or ready) "
        f"({IN_FLIGHT} in flight; a command unanswered within {ANSWER_WITHIN:g} s is lost: "
        "Discord's window is 3 s). Same sweep, no move: that sweep again once the pods settled "
        "after the moves, the time the pod takes to answer that many commands anyway.",
        "guild REST calls: GET /guilds/{id}, /guilds/{id}/channels and /guilds/{id}/members/"
        "{bot} from the park until the last probe; identifies: IDENTIFYs accepted for the "
        "moved shard in that time.",
        "Background commands not answered were sent while their shard had no session, or, "
        "in lazy mode, waited for their guild behind the global limit past Discord's 3 s.",
        "RSS/pod: the larger of the two remaining pods after the shard came back.",
        "Before the moves, one command in every guild (its owner's profile created), so that "
        "the sweeps measure the handover and not first-sight inserts.",
    ]
    return result


async def flush_redis(url: str) -> None:
    """Empty the run's own Redis (sessions, snapshots, leases) between modes."""
    from bench.data import redis_client

    async with redis_client(url) as client:
        await client.flushall()


BENCHMARK = Benchmark("scale", "shard handover at 2,500 guilds a shard, by HANDOVER_MODE", run)
