"""budget: 3 pods under about 3x the global REST limit, with the shared limiter and without.

A sandbox that enforces Discord's rules at a global limit of L requests/s for the bot token
(Discord's route buckets too); 3 bot processes, one shard each, told REST_GLOBAL_LIMIT=L. For
D seconds members offer work that needs about 3 x L REST calls a second:

- chat: a member one XP short of level 1 speaks; the answer is a level-up message (low priority);
- `!warn @member reason` by the guild's owner: a reply, a modlog post and a DM to the member;
- `!balance`: a prefix reply.

Then the run waits until every command is answered or the backlog had time to drain at the
limit (3 x D + 10 s). The same run with REST_BUDGET=false is the baseline: each process left to
discord.py's own limiter. What the sandbox saw: its busiest second of global-limited requests
against L, global 429s, route 429s other than scope `shared`, invalid requests (401/403/429);
and the commands answered, answered with an error, or lost (no answer by the deadline).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

from app.coord.leases import EPOCH_KEY
from bench.commands import reset_xp, seed_members
from bench.data import redis_client
from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import Pods, pods_for
from bench.startup import flush
from bench.tables import Table
from bench.traffic import ERROR_MARK, kind_of, sandbox, seats
from sandbox import SandboxServer
from sandbox.builders import build_world
from sandbox.permissions import P
from sandbox.rate_ledger import GLOBAL_COUNTED, INVALID, RateStats
from sandbox.ratelimits import DISCORD_ROUTE_LIMITS
from sandbox.world import Channel, Guild, Member, Overwrite, World
from testsupport.processes import BotProcess

PODS = 3
#: REST calls a round of work needs (as measured): a level-up message; a warn's reply, modlog
#: post, DM channel and DM, and more; a balance reply.
CALLS_PER_ROUND = 7
KINDS = ("level-up", "warn", "balance")
#: Mode -> (REST_BUDGET, whether Redis goes away for the middle third of the load).
MODES = {
    "shared limiter": ("true", False),
    "shared limiter, Redis away": ("true", True),
    "off (baseline)": ("false", False),
}


@dataclass(frozen=True, slots=True)
class Plan:
    """The limit, the world and how long the load lasts at a scale."""

    limit: int
    guilds: int
    members: int
    seconds: float

    @property
    def rounds_per_s(self) -> float:
        """Rounds of work a second: about 3 x the limit in REST calls."""
        return 3 * self.limit / CALLS_PER_ROUND

    @property
    def drain_s(self) -> float:
        """How long after the load commands may still be answered."""
        return 3 * self.seconds + 10


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(limit=10, guilds=3, members=12, seconds=2.0),
    "small": Plan(limit=20, guilds=6, members=40, seconds=10.0),
    "full": Plan(limit=50, guilds=30, members=60, seconds=30.0),
}


@dataclass
class Outcome:
    """One mode's run: what the sandbox counted and what became of the commands."""

    mode: str
    busiest: int
    global_429: int
    route_429: int
    invalid: int
    calls: int
    answers: dict[str, dict[str, int]]
    errors: dict[str, str]
    #: The route 429s: "METHOD route", seconds after the pods were started.
    limited: list[tuple[str, float]]
    #: With Redis away: its length (s), the busiest second and global 429s while it was away
    #: and from its return to the end of the run.
    away: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the facts."""
        return dict(vars(self))


def places(server: SandboxServer, guild: Guild) -> dict[str, Channel]:
    """Where each kind of work happens in `guild`: a channel apiece, so that a bot message
    there answers that kind, and the staff-only #modlog."""
    text = server.world.text_channels(guild)
    modlog = next(c for c in text if c.name == "modlog")
    return {
        **dict(zip(KINDS, [c for c in text if c is not modlog], strict=False)),
        "modlog": modlog,
    }


def let_the_bot_post_modlogs(world: World) -> None:
    """The bot may post in each guild's #modlog (hidden from @everyone), as a server sets it."""
    allow = int(P.VIEW_CHANNEL | P.SEND_MESSAGES | P.EMBED_LINKS)
    for guild in world.guilds.values():
        modlog = next(c for c in world.text_channels(guild) if c.name == "modlog")
        modlog.overwrites.append(Overwrite(world.bot.id, 1, allow=allow))


def warnable(guild: Guild, humans: list[Member], bot_id: int) -> list[Member]:
    """The members whose top role is below the bot's (the bot may warn only them)."""

    def top(member: Member) -> int:
        return max((guild.roles[r].position for r in member.roles), default=0)

    bot = top(guild.members[bot_id])
    return [m for m in humans if top(m) < bot]


class Load:
    """Rounds of chat, warns and balances, spread over the guilds."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.driver = server.driver
        self.rng = random.Random(7)
        self.guilds = list(server.world.guilds.values())
        self.places = {g.id: places(server, g) for g in self.guilds}
        self.humans = {g.id: [m for m in g.members.values() if not m.user.bot] for g in self.guilds}
        self.targets = {
            g.id: warnable(g, self.humans[g.id], server.world.bot.id) for g in self.guilds
        }
        # Each member levels up once: chat comes from members who have not spoken yet.
        speakers = itertools.zip_longest(
            *([(g, m) for m in self.humans[g.id]] for g in self.guilds)
        )
        self.speakers = (pair for pair in itertools.chain(*speakers) if pair is not None)
        self.sent = dict.fromkeys(KINDS, 0)
        #: An error answer of each kind that had one, for the report.
        self.errors: dict[str, str] = {}
        #: Per channel, how many messages it held before the load.
        self.before = {c.id: len(c.message_ids) for p in self.places.values() for c in p.values()}

    async def say(self, guild: Guild, member: Member, kind: str, text: str) -> None:
        """`member` sends `text` in the channel of `kind`."""
        await self.driver.send_message(guild, self.places[guild.id][kind], member, text)
        self.sent[kind] += 1

    async def round(self) -> None:
        """A level-up, a warn and a balance, in random guilds."""
        speaker = next(self.speakers, None)
        if speaker is not None:
            guild, member = speaker
            await self.say(guild, member, "level-up", "hello there")
        guild = self.rng.choice(self.guilds)
        owner = self.driver.member(guild, guild.owner_id)
        target = self.rng.choice(self.targets[guild.id])
        await self.say(guild, owner, "warn", f"!warn <@{target.user.id}> load test")
        await self.say(guild, self.rng.choice(self.humans[guild.id]), "balance", "!balance")

    async def run(self, rounds_per_s: float, seconds: float) -> None:
        """Rounds at a steady rate for `seconds`."""
        started = time.monotonic()
        for index in itertools.count():
            due = started + index / rounds_per_s
            if due - started >= seconds:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self.round()

    def answers(self) -> dict[str, dict[str, int]]:
        """Per kind: answered ("ok"), answered with an error, or lost (no answer yet)."""
        world, bot = self.server.world, self.server.world.bot.id
        counts = {kind: {"ok": 0, "error": 0} for kind in KINDS}
        for where in self.places.values():
            for kind in KINDS:
                channel = where[kind]
                for message_id in channel.message_ids[self.before[channel.id] :]:
                    message = world.messages[message_id]
                    if message.author_id == bot:
                        error = message.content.startswith(ERROR_MARK)
                        counts[kind]["error" if error else "ok"] += 1
                        if error:
                            self.errors.setdefault(kind, message.content)
        for kind, sent in self.sent.items():
            counts[kind]["unanswered"] = sent - counts[kind]["ok"] - counts[kind]["error"]
        return counts

    async def settle(self, within: float) -> dict[str, dict[str, int]]:
        """The answers once every command has one, or after `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not any(counts["unanswered"] for counts in self.answers().values()):
                break
            await asyncio.sleep(0.25)  # polling the sandbox's world, as a member would look
        return self.answers()


async def set_modlogs(server: SandboxServer) -> None:
    """Each guild's owner sets its modlog channel (before anything is measured)."""
    for guild in server.world.guilds.values():
        owner = server.driver.member(guild, guild.owner_id)
        where = places(server, guild)
        text = f"!config modlog <#{where['modlog'].id}>"
        sent = await server.driver.send_message(guild, where["balance"], owner, text)
        reply = await server.driver.wait_reply(sent, 60)
        assert kind_of(reply) == "ok", reply.content


async def start_pods(pods: Pods, server: SandboxServer, budget: str) -> list[BotProcess]:
    """3 pods, one shard each, on an empty Redis whose leases are granted at once."""
    await flush(pods.redis_url)
    async with redis_client(pods.redis_url) as client:
        seconds, _ = await client.time()
        await client.set(EPOCH_KEY, (seconds - 600) * 1000)
    processes = [
        pods.guildbot(f"budget-{budget}-{i}", server, POD_INDEX=str(i), REST_BUDGET=budget)
        for i in range(PODS)
    ]
    await asyncio.gather(*(p.start() for p in processes))
    await server.driver.wait_for_shards(list(range(PODS)), timeout=120)
    await asyncio.gather(*(p.wait_ready(120) for p in processes))
    return processes


async def measure(mode: str, plan: Plan, pods: Pods, server: SandboxServer) -> Outcome:
    """One mode: start the pods, offer the load, wait for the answers, read the ledger."""
    budget, outage = MODES[mode]
    await reset_xp(pods.db.url, pods.redis_url)
    started = time.time()
    processes = await start_pods(pods, server, budget)
    window: tuple[float, float] | None = None
    try:
        if budget == "true":
            await set_modlogs(server)
        since = time.time()
        load = Load(server)
        progress(f"{mode}: {plan.rounds_per_s * plan.seconds:.0f} rounds in {plan.seconds:g} s")
        away = asyncio.create_task(redis_away(pods.redis_url, plan.seconds / 3)) if outage else None
        await load.run(plan.rounds_per_s, plan.seconds)
        window = await away if away is not None else None
        answers = await load.settle(plan.drain_s)
    finally:
        await asyncio.gather(*(p.kill() for p in processes))
    stats = server.driver.rate_stats(since)
    return Outcome(
        mode=mode,
        busiest=stats.busiest.get(GLOBAL_COUNTED) if stats.busiest else 0,
        global_429=stats.total("429_global"),
        route_429=stats.total("429_user"),
        invalid=stats.total(INVALID),
        calls=stats.total(GLOBAL_COUNTED),
        answers=answers,
        errors=load.errors,
        limited=[
            (f"{c.method} {c.route}", round(c.time - started, 1))
            for c in server.driver.rest_calls(status=429)
            if c.scope == "user" and c.time >= started
        ],
        away=None if window is None else away_figures(stats, window),
    )


async def redis_away(url: str, length: float) -> tuple[float, float]:
    """From a third of the load on, Redis answers no client for `length` seconds (CLIENT
    PAUSE ALL: every pod's call times out, as with a Redis down, and the keys stay);
    (from, to) in Unix time."""
    await asyncio.sleep(length)  # the load's first third, on the shared limiter
    async with redis_client(url) as client:
        began = time.time()
        await client.execute_command("CLIENT", "PAUSE", int(length * 1000), "ALL")
    await asyncio.sleep(max(0.0, began + length - time.time()))  # Redis ends the pause itself
    return began, began + length


def away_figures(stats: RateStats, window: tuple[float, float]) -> dict[str, float]:
    """The busiest second and global 429s while Redis was away and from its return on."""
    began, ended = int(window[0]), int(window[1])
    during = [s for s in stats.seconds if began <= s.second < ended]
    after = [s for s in stats.seconds if s.second >= ended]
    return {
        "length_s": window[1] - window[0],
        "busiest_away": max((s.get(GLOBAL_COUNTED) for s in during), default=0),
        "global_429_away": sum(s.get("429_global") for s in during),
        "busiest_back": max((s.get(GLOBAL_COUNTED) for s in after), default=0),
        "global_429_back": sum(s.get("429_global") for s in after),
    }


async def run(ctx: RunContext) -> Result:
    """The shared limiter, then the baseline, on one sandbox."""
    plan = PLANS[ctx.scale]
    result = ctx.result(
        f"{PODS} pods (one shard each) against a sandbox enforcing a global limit of "
        f"{plan.limit} requests/s and Discord's route buckets; {plan.guilds} guilds of "
        f"{plan.members} members; for {plan.seconds:g} s, {plan.rounds_per_s:.1f} rounds/s of a "
        f"level-up, a warn (reply, modlog post, DM) and a prefix reply: about "
        f"{CALLS_PER_ROUND * plan.rounds_per_s:.0f} REST calls/s offered, 3x the limit."
    )
    world = build_world(plan.guilds, 12, 8, plan.members, seed=11, shard_count=PODS)
    let_the_bot_post_modlogs(world)
    shared = {"SHARD_COUNT": str(PODS), "SHARDS_PER_POD": "1", "IDENTIFY_WINDOW_S": "0.1",
              "REST_GLOBAL_LIMIT": str(plan.limit), "LEASE_TTL_S": "10"}  # fmt: skip
    outcomes = []
    limits = {"global_limit": plan.limit, "route_limits": DISCORD_ROUTE_LIMITS}
    async with (
        pods_for(ctx, **shared) as pods,
        sandbox(world, identify_window=0.1, **limits) as server,
    ):
        await seed_members(pods.db.url, [s for guild in seats(world) for s in guild])
        for mode in MODES:
            outcomes.append(await measure(mode, plan, pods, server))
    result.tables += [limits_table(plan, outcomes), away_table(plan, outcomes)]
    result.tables += [answers_table(outcomes)]
    result.facts.update(limit=plan.limit, outcomes=[o.as_dict() for o in outcomes])
    result.notes += [
        "Every mode ran in one run, on one sandbox and one database; each started 3 fresh "
        "pods on an empty Redis of the run's own. The baseline ran last, its modlog "
        "channels already set.",
        "Redis away: from a third of the load on, `CLIENT PAUSE ALL` for a third of it (every "
        "pod's Redis call times out after 1 s, as with a Redis down; the keys stay, so no "
        "lease is lost; a restarted Redis without persistence loses the leases, which stops "
        "the shards by design: the bank benchmark runs that). Back: from the pause's end to "
        "the end of the run.",
        "busiest second: the most requests the sandbox counted against the global limit in "
        "one wall-clock second (interaction callbacks are exempt; there are none here). "
        "Route 429s: scope `user`, Discord's per-route buckets (scope `shared` ones do not "
        "count as invalid and are left out). Invalid: 401, 403 and 429 answers, Discord's "
        "Cloudflare ban counts 10,000 per 10 minutes per address.",
        "lost: no answer by the deadline (3 x the load's length + 10 s, enough to drain the "
        "backlog at the limit). Level-ups are low priority: with the shared limiter they "
        "wait until the queue is short, so under a sustained 3x load most come after the "
        "commands.",
    ]
    result.notes += [
        f"{o.mode}: route 429s on " + ", ".join(f"{route} ({at:g} s after the pods started)"
                                                for route, at in o.limited)
        for o in outcomes
        if o.limited and MODES[o.mode][0] == "true"
    ]  # fmt: skip
    return result


def limits_table(plan: Plan, outcomes: list[Outcome]) -> Table:
    """What the sandbox counted, per mode."""
    table = Table(
        f"Discord's limits, {PODS} pods at 3x the global limit of {plan.limit}/s",
        ["mode", "busiest second", "limit", "REST calls", "global 429s", "route 429s",
         "invalid requests"],
    )  # fmt: skip
    for o in outcomes:
        table.add(o.mode, o.busiest, plan.limit, o.calls, o.global_429, o.route_429, o.invalid)
    return table


def away_table(plan: Plan, outcomes: list[Outcome]) -> Table:
    """With Redis away for the middle third: the limit kept while away and after its return."""
    table = Table(
        "Redis away for the middle third of the load: each pod on its share, then shared again",
        ["mode", "Redis away s", "busiest second away", "busiest second back", "limit",
         "global 429s away", "global 429s back"],
    )  # fmt: skip
    for o in outcomes:
        if o.away is not None:
            a = o.away
            table.add(o.mode, a["length_s"], int(a["busiest_away"]), int(a["busiest_back"]),
                      plan.limit, int(a["global_429_away"]), int(a["global_429_back"]))  # fmt: skip
    return table


def answers_table(outcomes: list[Outcome]) -> Table:
    """What became of the commands, per mode and kind."""
    table = Table(
        "Commands answered / with an error / lost",
        ["mode", "kind", "sent", "answered", "error", "lost"],
    )
    for o in outcomes:
        for kind, counts in o.answers.items():
            sent = sum(counts.values())
            table.add(o.mode, kind, sent, counts["ok"], counts["error"], counts["unanswered"])
    return table


BENCHMARK = Benchmark(
    "budget", "one REST budget for 3 pods at 3x the global limit, against each pod alone", run
)
