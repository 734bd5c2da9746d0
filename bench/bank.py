"""bank: Jepsen's bank workload, adapted: transfers under faults, then an audit of every coin.

Four bot processes (`python -m app run`, live rebalancing: SHARD_COUNT=4, POD_INDEX 0..3,
REDIS_URL set) behind an in-process sandbox, with a PostgreSQL and a Redis of the benchmark's
own (testsupport/servers.py: it restarts them, so never the shared ones). Simulated members of 8
guilds (24 members each, 1,000 coins each, seeded with a `grant` ledger row so that the ledger
explains every balance from the start) send `/transfer member amount` to each other at a fixed
rate, amounts 1-400 so that some are refused for want of coins, for N minutes, while a nemesis

- (a) kills a random bot process with SIGKILL and restarts it (the new process takes its
  shard back once the dead one's lease expires, and RESUMEs the saved session: the sandbox
  replays the interactions it missed);
- (b) restarts PostgreSQL once (`pg_ctl restart -m fast`: every connection drops; the bot
  retries transient database errors for about 10 s, app/db/retry.py);
- (c) restarts Redis once (no persistence: leases, saved sessions, the identify queue, the
  membership, locks and caches are all lost at once, and every pod's pooled connections are
  stale: redis-py retries them; no lease may be granted until a whole lease TTL after the new
  epoch began, which the audit checks in the pods' logs);
- (d) forces resumes: op 7 RECONNECT (`send_reconnect`) and a dropped TCP connection
  (`drop_connection`) on a random live shard, in turns, every few seconds;
- (e) pauses PostgreSQL for 5 s (SIGSTOP of the server and its backends: connections hang
  rather than drop, as on a stalled host);
- (f) replays late: a shard's connection is dropped and the sandbox answers its RESUME 5 s
  later, so the interactions sent meanwhile reach the bot after Discord's 3 s window.

The sandbox enforces Discord's 3 s window for an interaction's first response (a deferral
counts), as Discord does. A member waits up to REPLY_TIMEOUT for the final answer: "done"
("Sent ..."), "failed" (an error reply, ❌ ...) or "unknown" (no answer). Once the load has
stopped and every process has drained and stopped, the audit checks, in one snapshot of the
database:

- the sum of all balances is what was seeded, and no balance is negative;
- the ledger replays to every balance: per account, credits - debits == coins, and the last
  row's balance_after == coins;
- every transfer answered "done" is in the ledger exactly once (idempotency key
  `tx:{interaction_id}:out`, app/bot/cogs/economy.py), with its sender, recipient, amount,
  a matching `:in` row, and the balance the reply showed; every transfer answered "failed" is
  not in it; and the ledger holds no transfer that no member sent;
- no effect without an answer: every transfer in the ledger was acknowledged within
  Discord's 3 s (so it was never executed late); one acknowledged in time whose final reply
  never came is counted as "reply lost to a kill after its commit" when a pod was killed
  within 30 s after it was sent (the member sees the result in /balance), and is an anomaly
  otherwise;
- no lease was granted within a new epoch (after each Redis restart, until one lease TTL
  after the epoch began), by the pods' own "lease taken" log lines.

Any violation is an anomaly; the test suite asserts there are none.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from app.coord.leases import EPOCH_KEY
from bench.bank_moderation import Moderators, settle, targets_of
from bench.bank_moderation import audit as moderation_audit
from bench.data import (
    connect,
    copy_members,
    fetch_value,
    fresh_database,
    redis_version,
)
from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.processes import Pods, workdir
from bench.tables import Table
from bench.timing import open_loop
from bench.traffic import ERROR_MARK, Crowd, ReplyWatcher, publish_commands, sandbox, seats
from sandbox import SandboxServer
from sandbox.builders import build_world
from sandbox.interactions import InteractionRecord
from sandbox.world import World
from testsupport.processes import BotProcess, stop_all
from testsupport.servers import PrivatePostgres, PrivateRedis

SHARDS = 4
PODS = 4
GUILDS = 8
MEMBERS = 25  # counting the bot
START = 1_000
AMOUNT_MAX = 400
POD_ENV = {
    "SHARD_COUNT": str(SHARDS),
    "IDENTIFY_WINDOW_S": "0.1",
    "LEASE_TTL_S": "2",
    "REBALANCE_GRACE_S": "4",
    "OUTBOX_LEASE_S": "3",
    "LOG_LEVEL": "INFO",
}
KILL_PAUSE = 1.0  # seconds between a SIGKILL and the restart
LEASE_TTL = float(POD_ENV["LEASE_TTL_S"])
PAUSE_FOR = 5.0  # seconds PostgreSQL stays paused
LATE_BY = 5.0  # seconds the sandbox holds back a late RESUME (and its replay)
#: Discord's window for an interaction's first response, which the sandbox enforces here.
DISCORD_DEADLINE = 3.0
#: A reply lost after its commit is put down to a kill within this long after it was sent
#: (COMMAND_TIMEOUT_S: the longest a command's work may run).
LOST_REPLY_WINDOW = 30.0


@dataclass(frozen=True, slots=True)
class Plan:
    """A scale's run: minutes of load, offered transfers and moderation commands per second,
    how long members wait."""

    minutes: float
    rate: float
    reply_timeout: float
    moderation_rate: float = 2.0


PLANS: dict[Scale, Plan] = {
    "tiny": Plan(minutes=0.5, rate=20, reply_timeout=15),
    "small": Plan(minutes=2.5, rate=30, reply_timeout=55),
    "full": Plan(minutes=10, rate=30, reply_timeout=55),
}
SETTLE_WITHIN = 120.0  # seconds to wait for the moderation outbox to finish after the load


@dataclass
class Sent:
    """One transfer a member asked for, and what the bot answered."""

    interaction_id: int
    guild_id: int
    sender: int
    recipient: int
    amount: int
    at: float  # seconds since the load started
    kind: str = "unknown"  # done, failed, other, unknown
    text: str = ""
    #: The sandbox's record of the interaction: when it was made and acknowledged.
    record: InteractionRecord | None = field(default=None, repr=False)

    @property
    def answered_at_last(self) -> bool:
        """Its final answer came, if only after the member had stopped waiting."""
        return self.record is not None and self.record.response is not None

    @property
    def acknowledged_in_time(self) -> bool:
        """Its first response (a deferral counts) came within Discord's 3 s."""
        record = self.record
        return (
            record is not None
            and record.acknowledged is not None
            and record.acknowledged - record.created <= DISCORD_DEADLINE
        )


@dataclass
class Fault:
    """One fault the nemesis injected."""

    at: float
    kind: str
    detail: str
    took: float = 0.0
    effective: bool = True
    #: Unix time it struck; for a Redis restart, when the new epoch began (Redis's clock).
    wall: float = field(default_factory=time.time)
    epoch: float | None = None


def schedule(seconds: float) -> list[tuple[float, str]]:
    """When each fault strikes: kills every ~30 s (at least two), as many kills in the middle of
    a ban, a PostgreSQL restart at 30 % and a pause at 45 %, Redis at 65 %, late replays at 20 %
    and 80 % of the run, and a forced resume every few seconds, RECONNECT and drop in turn."""
    plan: list[tuple[float, str]] = []
    kills = max(2, round(seconds / 30))
    plan += [(seconds * (i + 0.5) / kills * 0.9, "kill") for i in range(kills)]
    plan += [(seconds * (i + 0.75) / kills * 0.9, "kill mid-ban") for i in range(kills)]
    plan += [(seconds * 0.30, "postgres"), (seconds * 0.65, "redis")]
    plan += [(seconds * 0.45, "postgres-pause")]
    plan += [(seconds * 0.20, "late-replay"), (seconds * 0.80, "late-replay")]
    every = max(3.0, seconds / 12)
    t, turn = 2.0, 0
    while t < seconds - 2:
        plan.append((t, ("reconnect", "drop")[turn % 2]))
        t, turn = t + every, turn + 1
    return sorted(plan)


class Nemesis:
    """Injects the faults of `schedule` while the load runs."""

    def __init__(
        self,
        server: SandboxServer,
        pods: list[BotProcess],
        pg: PrivatePostgres,
        own_redis: PrivateRedis,
        seed: int,
        moderators: Moderators,
        reply_timeout: float,
    ) -> None:
        self.server, self.pods, self.pg, self.redis = server, pods, pg, own_redis
        self.moderators, self.reply_timeout = moderators, reply_timeout
        self.rng = random.Random(seed)
        self.faults: list[Fault] = []
        self.restarts: list[asyncio.Task[None]] = []
        self.orders: list[asyncio.Task[str]] = []  # the bans of "kill mid-ban", still answering

    async def run(self, plan: list[tuple[float, str]], started: float) -> None:
        """Strike on schedule (seconds after `started`, a perf_counter value)."""
        for offset, kind in plan:
            delay = started + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            at = time.perf_counter() - started
            progress(f"nemesis at {at:.1f} s: {kind}")
            fault = await self.strike(kind, at)
            self.faults.append(fault)
        await asyncio.gather(*self.orders)
        await asyncio.gather(*self.restarts)

    async def strike(self, kind: str, at: float) -> Fault:
        """One fault."""
        if kind == "kill":
            index = self.rng.randrange(len(self.pods))
            pod = self.pods[index]
            await pod.kill()
            self.restarts.append(asyncio.create_task(self._restart(pod)))
            return Fault(at, kind, f"pod {index} (SIGKILL, restarted {KILL_PAUSE:g} s later)")
        if kind == "kill mid-ban":
            killed, order = await self.moderators.ban_then_kill(
                self.pods, self.redis.url, SHARDS, self.reply_timeout
            )
            self.orders.append(order)
            if killed is None:
                return Fault(at, kind, "no pod found serving the guild", effective=False)
            self.restarts.append(asyncio.create_task(self._restart(killed)))
            return Fault(at, kind, f"{killed.name} once the ban's DM arrived")
        if kind == "postgres":
            took = await self.pg.restart()
            return Fault(at, kind, "pg_ctl restart -m fast", took)
        if kind == "redis":
            wall = time.time()
            took = await self.redis.restart()
            epoch = await new_epoch(self.redis.url)
            detail = "redis-server stopped and started: every key lost, pooled connections stale"
            return Fault(at, kind, detail, took, wall=wall, epoch=epoch)
        if kind == "postgres-pause":
            await self.pg.pause()
            self.restarts.append(asyncio.create_task(self._resume_postgres()))
            return Fault(at, kind, f"SIGSTOP for {PAUSE_FOR:g} s", PAUSE_FOR)
        holders = self.server.driver.shard_holders()
        live = sorted(s for s, sessions in holders.items() if sessions)
        shard = self.rng.choice(live) if live else self.rng.randrange(SHARDS)
        if kind == "late-replay":
            if not live:
                return Fault(at, kind, "no live shard", effective=False)
            self.server.delay_resumes(LATE_BY)
            hit = self.server.drop_connection(shard)
            return Fault(at, kind, f"shard {shard}, RESUMEd {LATE_BY:g} s late", effective=hit > 0)
        if kind == "reconnect":
            hit = self.server.send_reconnect(shard)
        else:
            hit = self.server.drop_connection(shard)
        return Fault(at, kind, f"shard {shard}", effective=hit > 0)

    async def _resume_postgres(self) -> None:
        await asyncio.sleep(PAUSE_FOR)  # the length of the pause itself
        await self.pg.resume()

    async def _restart(self, pod: BotProcess) -> None:
        await asyncio.sleep(KILL_PAUSE)
        await pod.start()


class Members(Crowd):
    """The simulated members: who sends what, and the record of every answer. The moderation
    targets (`aside`) send and receive nothing: they get banned."""

    def __init__(
        self, server: SandboxServer, watcher: ReplyWatcher, seed: int, aside: set[int]
    ) -> None:
        super().__init__(server, watcher, seed)
        self.by_guild = [[s for s in g if s.user_id not in aside] for g in self.by_guild]
        self.everyone = [s for g in self.by_guild for s in g]
        self.sent: list[Sent] = []
        self.started = 0.0

    async def transfer(self, i: int, timeout: float) -> str:  # noqa: ASYNC109
        """One /transfer from a random member to another of the same guild."""
        sender, recipient = self.pair()
        amount = self.rng.randint(1, AMOUNT_MAX)
        handle = await self.driver.slash(
            sender.guild,
            sender.channel,
            sender.member,
            "transfer",
            member=recipient.user_id,
            amount=amount,
        )
        record = Sent(
            handle.id,
            sender.guild.id,
            sender.user_id,
            recipient.user_id,
            amount,
            time.perf_counter() - self.started,
            record=handle.record,
        )
        self.sent.append(record)
        try:
            _, view = await asyncio.wait_for(self.watcher.interaction(handle), timeout)
        except TimeoutError:
            return record.kind
        record.text = view.content
        if view.content.startswith("Sent "):
            record.kind = "done"
        elif view.content.startswith(ERROR_MARK):
            record.kind = "failed"
        else:
            record.kind = "other"
        return record.kind


# --- the database ------------------------------------------------------------------------------


async def seed(dsn: str, world: World) -> list[tuple[int, int]]:
    """Every human member gets START coins with a `grant` ledger row; returns the accounts."""
    accounts = [(s.guild.id, s.user_id) for guild in seats(world) for s in guild]
    now = datetime.now(UTC)
    async with connect(dsn) as conn:
        await copy_members(conn, [(g, u, START) for g, u in accounts])
        await conn.copy_records_to_table(
            "ledger",
            records=[
                (g, u, "grant", START, START, None, None, "bench seed", f"seed:{g}:{u}", now)
                for g, u in accounts
            ],
            columns=[
                "guild_id",
                "user_id",
                "kind",
                "amount",
                "balance_after",
                "actor_id",
                "counterparty_id",
                "reason",
                "idempotency_key",
                "created_at",
            ],
        )
    return accounts


REPLAY = """
SELECT m.guild_id, m.user_id, m.coins,
       coalesce(sum(CASE WHEN l.kind IN ('grant', 'daily', 'transfer_in') THEN l.amount
                         ELSE -l.amount END), 0) AS replayed,
       (SELECT l2.balance_after FROM ledger l2
         WHERE l2.guild_id = m.guild_id AND l2.user_id = m.user_id
         ORDER BY l2.id DESC LIMIT 1) AS last_balance
FROM members m
LEFT JOIN ledger l ON l.guild_id = m.guild_id AND l.user_id = m.user_id
GROUP BY m.id, m.guild_id, m.user_id, m.coins
"""

_BALANCE = re.compile(r"Your balance: ([\d,]+)")
ANOMALIES = (
    "sum of balances changed",
    "negative balances",
    "accounts nobody seeded",
    "ledger does not replay to the balance",
    "last balance_after differs from the balance",
    "transfer with only one of its two ledger rows",
    "answered done, not in the ledger",
    "answered done, ledger row differs",
    "answered done, reply balance differs from the ledger",
    "answered failed, yet in the ledger",
    "answer neither done nor an error",
    "ledger transfers nobody sent",
    "in the ledger, not acknowledged within Discord's 3 s",
    "committed, no final reply, and no kill to explain it",
    "lease granted within a new epoch",
)


async def audit(
    dsn: str,
    accounts: list[tuple[int, int]],
    sent: list[Sent],
    faults: list[Fault],
    logs: list[Path],
) -> dict[str, Any]:
    """Every check of the module docstring: the database in one REPEATABLE READ snapshot, the
    lease grants in the pods' logs."""
    async with (
        connect(dsn) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        members = await conn.fetch("SELECT guild_id, user_id, coins FROM members")
        replay = await conn.fetch(REPLAY)
        rows = await conn.fetch(
            "SELECT idempotency_key, kind, guild_id, user_id, counterparty_id, amount,"
            " balance_after FROM ledger WHERE kind IN ('transfer_out', 'transfer_in')"
        )
    anomalies: Counter[str] = Counter(dict.fromkeys(ANOMALIES, 0))
    examples: list[dict[str, Any]] = []

    def flag(kind: str, one: Sent | None = None, **more: Any) -> None:
        anomalies[kind] += 1
        if len(examples) < 10:
            example: dict[str, Any] = {"anomaly": kind, **more}
            if one is not None:
                record = one.record
                acked = record.acknowledged if record is not None else None
                example.update(
                    interaction=one.interaction_id,
                    guild=one.guild_id,
                    sender=one.sender,
                    recipient=one.recipient,
                    amount=one.amount,
                    sent_at_s=round(one.at, 2),
                    reply=one.text,
                    acknowledged_after_s=(
                        round(acked - record.created, 2) if record and acked else None
                    ),
                    history=[m.kind for m in record.history] if record else [],
                )
            examples.append(example)

    seeded = set(accounts)
    total = sum(r["coins"] for r in members)
    if total != START * len(accounts):
        flag("sum of balances changed", total=total, expected=START * len(accounts))
    for r in members:
        if r["coins"] < 0:
            flag("negative balances", account=dict(r))
        if (r["guild_id"], r["user_id"]) not in seeded:
            flag("accounts nobody seeded", account=dict(r))
    for r in replay:
        if r["replayed"] != r["coins"]:
            flag("ledger does not replay to the balance", account=dict(r))
        if r["last_balance"] != r["coins"]:
            flag("last balance_after differs from the balance", account=dict(r))
    outs = {r["idempotency_key"]: r for r in rows if r["kind"] == "transfer_out"}
    ins = {r["idempotency_key"]: r for r in rows if r["kind"] == "transfer_in"}
    unknown_applied = lost_to_kill = answered_late = 0
    kills = [f.at for f in faults if f.kind == "kill"]
    keys_sent = set()
    for one in sent:
        key = f"tx:{one.interaction_id}"
        keys_sent.add(key)
        out, incoming = outs.get(f"{key}:out"), ins.get(f"{key}:in")
        if (out is None) != (incoming is None):
            flag("transfer with only one of its two ledger rows", one)
        ledger = dict(out) if out is not None else None
        if out is not None and not one.acknowledged_in_time:
            flag("in the ledger, not acknowledged within Discord's 3 s", one, ledger=ledger)
        if one.kind == "done":
            if out is None:
                flag("answered done, not in the ledger", one)
                continue
            expected = (one.guild_id, one.sender, one.recipient, one.amount)
            if (out["guild_id"], out["user_id"], out["counterparty_id"], out["amount"]) != expected:
                flag("answered done, ledger row differs", one, ledger=ledger)
            if incoming is not None and (incoming["user_id"], incoming["amount"]) != (
                one.recipient,
                one.amount,
            ):
                flag("answered done, ledger row differs", one, ledger=dict(incoming))
            shown = _BALANCE.search(one.text)
            if shown is None or int(shown.group(1).replace(",", "")) != out["balance_after"]:
                flag("answered done, reply balance differs from the ledger", one, ledger=ledger)
        elif one.kind == "failed":
            if out is not None:
                flag("answered failed, yet in the ledger", one, ledger=ledger)
        elif one.kind == "other":
            flag("answer neither done nor an error", one)
        elif out is not None:
            unknown_applied += 1
            killed = any(one.at <= k <= one.at + LOST_REPLY_WINDOW for k in kills)
            if not one.acknowledged_in_time:
                pass  # an anomaly, flagged above
            elif one.answered_at_last:
                answered_late += 1
            elif killed:
                lost_to_kill += 1
            else:
                flag("committed, no final reply, and no kill to explain it", one, ledger=ledger)
    phantoms = {k.rsplit(":", 1)[0] for k in [*outs, *ins]} - keys_sent
    for key in sorted(phantoms):
        flag("ledger transfers nobody sent", key=key)
    for granted, epoch in grants_within_epochs(faults, logs):
        flag("lease granted within a new epoch", granted=granted, epoch_began=epoch)
    return {
        "anomalies": {k: v for k, v in anomalies.items() if v},
        "anomaly_examples": examples,
        "anomaly_kinds_checked": list(ANOMALIES),
        "total_coins": total,
        "expected_coins": START * len(accounts),
        "accounts": len(accounts),
        "ledger_transfers": len(outs),
        "unknown_applied": unknown_applied,
        "replies_lost_to_a_kill": lost_to_kill,
        "answered_after_the_wait": answered_late,
        "acknowledged_in_time": sum(1 for one in sent if one.acknowledged_in_time),
    }


async def new_epoch(redis_url: str, within: float = 15.0) -> float | None:
    """When the epoch of a restarted Redis began (Unix time, Redis's clock): the first pod to
    ask for a lease starts it. None if no pod asked within `within` seconds."""
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            began = await client.get(EPOCH_KEY)
            if began is not None:
                return int(began) / 1000
            await asyncio.sleep(0.05)  # polling another process's write
        return None
    finally:
        await client.aclose()


def grants_within_epochs(faults: list[Fault], logs: list[Path]) -> list[tuple[float, float]]:
    """(granted, epoch began) for every "lease taken" log line inside a Redis restart's new
    epoch: after the restart and before one lease TTL had passed since the epoch began."""
    grants: list[float] = []
    for path in logs:
        for line in path.read_text().splitlines() if path.exists() else []:
            if "lease taken" in line and line.startswith("{"):
                grants.append(datetime.fromisoformat(json.loads(line)["time"]).timestamp())
    found = []
    for fault in faults:
        if fault.kind == "redis" and fault.epoch is not None:
            closes = fault.epoch + LEASE_TTL
            found += [(t, fault.epoch) for t in grants if fault.wall <= t < closes]
    return found


# --- the run -------------------------------------------------------------------------------------


def error_kind(text: str) -> str:
    """An error reply with its numbers and mentions blanked, to count errors by kind."""
    text = re.sub(r"<@!?\d+>", "@member", text)
    return re.sub(r"\d[\d,]*", "#", text)[:90]


async def wait_converged(server: SandboxServer, pods: list[BotProcess], within: float) -> None:
    """Every shard held and every pod ready."""
    await server.driver.wait_for_shards(list(range(SHARDS)), timeout=within)
    await asyncio.gather(*(p.wait_ready(within) for p in pods))


@dataclass
class Outcome:
    """What the run produced, for the tables."""

    members: Members
    faults: list[Fault]
    audit: dict[str, Any]
    seconds: float
    duplicates: int
    errors_logged: int
    pod_starts: int
    moderation: dict[str, Any] = field(default_factory=dict)


async def run_bank(plan: Plan, seconds: float, logs: Path, servers: list[str]) -> Outcome:
    """Servers, sandbox, pods, load and nemesis, then the audit."""
    world = build_world(GUILDS, 10, 10, MEMBERS, seed=3, shard_count=SHARDS)
    async with (
        PrivatePostgres() as pg,
        PrivateRedis() as own_redis,
        fresh_database(pg.url, prefix="bank") as db,
        sandbox(world, identify_window=0.1, interaction_deadline=DISCORD_DEADLINE) as server,
    ):
        servers.extend(await describe_servers(db.dsn, own_redis))
        accounts = await seed(db.dsn, world)
        await publish_commands(server, db.url)
        where = Pods(db, own_redis.url, logs, POD_ENV)
        pods = [where.guildbot(f"pod-{i}", server, POD_INDEX=str(i)) for i in range(PODS)]
        watcher = ReplyWatcher(server)
        watcher.start()
        try:
            await asyncio.gather(*(p.start() for p in pods))
            await wait_converged(server, pods, 60)
            progress(f"{PODS} pods converged; load and nemesis for {seconds:g} s")
            moderators = Moderators(server, watcher, seed=20261130)
            members = Members(server, watcher, 20261128, targets_of(moderators.aside))
            nemesis = Nemesis(server, pods, pg, own_redis, 20261129, moderators, plan.reply_timeout)
            members.started = time.perf_counter()

            async def transfer(i: int) -> str:
                return await members.transfer(i, plan.reply_timeout)

            async def moderate(i: int) -> str:
                return await moderators.act(i, plan.reply_timeout)

            await asyncio.gather(
                open_loop(transfer, plan.rate, seconds),
                open_loop(moderate, plan.moderation_rate, seconds),
                nemesis.run(schedule(seconds), members.started),
            )
            elapsed = time.perf_counter() - members.started
            progress("load over; waiting for the moderation outbox to settle")
            settled = await settle(db.dsn, SETTLE_WITHIN)
            duplicates = len(server.driver.duplicate_shard_holders())
            errors_logged = sum(len(p.errors()) for p in pods)
            pod_starts = sum(p.starts for p in pods)
        finally:
            await watcher.stop()
            await stop_all(pods)
        progress("pods stopped; auditing the ledger and the case log")
        logs_of_pods = [p.log_path for p in pods]
        checked = await audit(db.dsn, accounts, members.sent, nemesis.faults, logs_of_pods)
        moderation = await moderation_audit(db.dsn, server, moderators)
        moderation["settle_seconds"] = round(settled, 1)
        checked["anomalies"].update(moderation.pop("anomalies"))  # one list for both audits
        checked["anomaly_examples"] += moderation.pop("anomaly_examples")
        checked["anomaly_kinds_checked"] += moderation.pop("anomaly_kinds_checked")
    return Outcome(
        members,
        nemesis.faults,
        checked,
        elapsed,
        duplicates,
        errors_logged,
        pod_starts,
        moderation,
    )


async def describe_servers(dsn: str, own_redis: PrivateRedis) -> list[str]:
    """The private servers' versions, for the report."""
    version = str(await fetch_value(dsn, "SHOW server_version")).split()[0]
    own_version = await redis_version(own_redis.url)
    return [
        f"PostgreSQL {version} of the benchmark's own (fsync=off, synchronous_commit=off, "
        "full_page_writes=off, max_connections=200, shared_buffers=64MB), same machine; "
        "restarted by the nemesis",
        f"Redis {own_version} of the benchmark's own (no persistence), same machine; "
        "restarted by the nemesis",
    ]


async def run(ctx: RunContext) -> Result:
    """The bank workload under the nemesis, then the audit."""
    plan = PLANS[ctx.scale]
    minutes = ctx.minutes if ctx.minutes is not None else plan.minutes
    seconds = minutes * 60
    result = ctx.result(
        f"{PODS} bot processes (live rebalancing, {SHARDS} shards), {GUILDS} guilds x "
        f"{MEMBERS - 1} members with {START:,} coins each; /transfer of 1-{AMOUNT_MAX} "
        f"coins offered at {plan.rate:g}/s, and /ban, /ban with a duration, /unban and /pardon "
        f"by each guild's moderator at {plan.moderation_rate:g}/s in all, for {minutes:g} min "
        f"under the nemesis; members wait up to {plan.reply_timeout:g} s for an answer."
    )
    servers: list[str] = []
    with workdir("bench-bank-") as logs:
        outcome = await run_bank(plan, seconds, logs, servers)
    result.servers = servers
    result.tables += tables(outcome, seconds)
    sent = outcome.members.sent
    kinds = Counter(s.kind for s in sent)
    faults = Counter(f.kind for f in outcome.faults if f.effective)
    result.facts.update(
        {
            "sent": len(sent),
            "replies": dict(kinds),
            "faults": dict(faults),
            "faults_attempted": dict(Counter(f.kind for f in outcome.faults)),
            "duplicate_shard_holders": outcome.duplicates,
            "errors_logged": outcome.errors_logged,
            "pod_starts": outcome.pod_starts,
            **outcome.audit,
            "moderation": outcome.moderation,
        }
    )
    result.notes += [
        'done: the reply said "Sent ..."; failed: an error reply (❌ ...); unknown: no answer '
        "within the wait. An unknown transfer may or may not have happened (the audit counts "
        "those in the ledger); done and failed ones must match the ledger exactly.",
        "Anomalies checked: " + "; ".join(outcome.audit["anomaly_kinds_checked"]) + ".",
        f"Two live sessions on one shard at once (the sandbox's duplicate_shard_holders): "
        f"{outcome.duplicates}. ERROR lines in the pods' last 200 log lines: "
        f"{outcome.errors_logged}.",
    ]
    for example in outcome.audit["anomaly_examples"]:
        result.notes.append(f"ANOMALY: {json.dumps(example, default=str, ensure_ascii=False)}")
    return result


def tables(outcome: Outcome, seconds: float) -> list[Table]:
    """Replies, faults, errors, anomalies and the timeline."""
    sent = outcome.members.sent
    kinds = Counter(s.kind for s in sent)
    summary = Table("Transfers and their answers", ["", "count", "share"])
    summary.add("sent", len(sent), "100%")
    for kind in ("done", "failed", "unknown", "other"):
        summary.add(kind, kinds[kind], f"{kinds[kind] / max(1, len(sent)):.1%}")
    summary.add("unknown, yet in the ledger", outcome.audit["unknown_applied"], None)
    summary.add(
        "  of which answered after the member's wait",
        outcome.audit["answered_after_the_wait"],
        None,
    )
    summary.add(
        "  of which the reply was lost to a kill after the commit",
        outcome.audit["replies_lost_to_a_kill"],
        None,
    )
    summary.add("acknowledged within Discord's 3 s", outcome.audit["acknowledged_in_time"], None)
    summary.add("transfers in the ledger", outcome.audit["ledger_transfers"], None)

    faults = Table("Faults injected", ["fault", "count", "details"])
    by_kind: dict[str, list[Fault]] = {}
    for fault in outcome.faults:
        by_kind.setdefault(fault.kind, []).append(fault)
    for kind, found in by_kind.items():
        hits = [f for f in found if f.effective]
        detail = ", ".join(
            f"{f.at:.0f} s" + (f" ({f.took:.1f} s)" if f.took else "") for f in found[:12]
        )
        if len(hits) != len(found):
            detail += f"; {len(found) - len(hits)} found no live session"
        faults.add(kind, len(hits), detail)
    faults.add("bot process starts (4 + restarts)", outcome.pod_starts, None)

    errors = Table("Errors members saw (numbers blanked)", ["reply", "count"])
    for text, n in Counter(error_kind(s.text) for s in sent if s.kind == "failed").most_common(8):
        errors.add(text, n)
    if not errors.rows:
        errors.add("(none)", 0)

    moderation = Table("Moderation orders and their answers", ["", "count"])
    for order, n in sorted(outcome.moderation["orders"].items()):
        moderation.add(order, n)
    moderation.add("cases in the log", outcome.moderation["cases"])
    moderation.add(
        "cases whose Discord work a later claim completed (a kill, a failure)",
        outcome.moderation["completed_by_a_later_claim"],
    )
    moderation.add("bans live at the audit", outcome.moderation["live_bans"])
    moderation.add(
        "seconds for the outbox to settle after the load", outcome.moderation["settle_seconds"]
    )
    for text, n in Counter(outcome.moderation["errors"]).most_common(6):
        moderation.add(f"error: {text}", n)

    anomalies = Table("Anomalies (must all be zero)", ["check", "count"])
    for kind in outcome.audit["anomaly_kinds_checked"]:
        anomalies.add(kind, outcome.audit["anomalies"].get(kind, 0))

    bucket = max(5.0, round(seconds / 24))
    timeline = Table(
        f"Timeline ({bucket:g} s buckets, by when the transfer was sent)",
        ["from s", "sent", "done", "failed", "unknown", "faults"],
    )
    for start in range(0, int(seconds + bucket), int(bucket)):
        inside = [s for s in sent if start <= s.at < start + bucket]
        if not inside:
            continue
        struck = [f.kind for f in outcome.faults if start <= f.at < start + bucket]
        count = Counter(s.kind for s in inside)
        timeline.add(
            start,
            len(inside),
            count["done"],
            count["failed"],
            count["unknown"],
            ", ".join(struck) or None,
        )
    return [summary, moderation, faults, errors, anomalies, timeline]


BENCHMARK = Benchmark(
    "bank",
    "the bank workload under faults: transfers, kills, restarts, resumes, then an audit",
    run,
)
