"""transfers: our Bank.transfer against the cheapest correct raw transfer and the tutorial's.

Four ways to move coins between two members, each on its own freshly seeded guild of
ACCOUNTS accounts in the same database, at 1, 8 and 64 concurrent callers (asyncio tasks in
one process; ours also as 2 processes x 32 tasks):

- ours: `Bank.transfer` with `Coordination.from_redis` (Redis account locks, row locks in
  account order, idempotency check, conditional debit and credit, two ledger rows, the
  leaderboard write-through): one call of the database function `bank_transfer_v1` through
  Tortoise's connection; "ours, model code (before)" is the same with the bank's model code
  (seven round trips through Tortoise's models), and "ours, one hold per lock (before)" the
  same with account locks that admit one transfer at a time instead of two, measured in the
  same run;
- raw: one asyncpg transaction: SELECT both rows FOR UPDATE in id order, `UPDATE ... SET
  coins = coins - $1 WHERE coins >= $1`, credit, COMMIT. No ledger, no idempotency;
- tutorial: read both balances, compute, write the absolute values back; no transaction and
  no lock, as the SQLAlchemy tutorial bot did (here with asyncpg, so the gap is the algorithm
  and not the ORM);
- raw asyncpg + ledger: a yardstick between ours and raw, the SQL work ours does (idempotency
  check, versions, two ledger rows) in raw asyncpg, without Tortoise or Redis.

Two traffic patterns: uniform random pairs, and a hot account (half the transfers touch
account 0). BENCH_CELL=PATTERN:CALLERS measures one cell alone (ours and the two raw
transfers), BENCH_ROUNDS=N sets the rounds per cell: a close ratio gets more rounds. After
each cell the guild's coins are summed: ours and raw must conserve them
exactly; the tutorial's lost updates create or destroy coins.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue as queue_module
import random
import statistics
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from multiprocessing.synchronize import Barrier
from typing import Any, NamedTuple, Protocol

import asyncpg

from app.coord import Coordination
from app.coord.locks import ADMITTED, RedisLocks
from app.db.connect import close_database
from app.domain.economy import Bank
from app.domain.errors import InsufficientFunds
from app.ops.event_loop import loop_factory, running_loop_name
from app.services import Services
from bench import redis_path
from bench.data import (
    BenchDatabase,
    connect,
    copy_members,
    drop_leaderboard_keys,
    fresh_database,
    open_tortoise,
    pg_pool,
    tortoise_context,
)
from bench.harness import Benchmark, Result, RunContext, Scale, progress, snowflake
from bench.tables import Table, ratio
from bench.timing import Run, closed_loop

ACCOUNTS = 1_000
START_COINS = 1_000_000
AMOUNT_MAX = 100
USER_BASE = 300_000_000_000_000_000
CALLERS = (1, 8, 64)
PROCESSES = 2  # ours is also run as PROCESSES processes sharing the largest caller count
#: What a BENCH_CELL run measures: ours against the two raw transfers.
ALONE = ("ours", "raw asyncpg + ledger", "raw asyncpg")
PATTERNS = {
    "uniform": "uniform random pairs among 1,000 accounts",
    "hot": "one hot account: half the transfers touch account 0",
}


@dataclass(frozen=True, slots=True)
class Budget:
    """How long a cell runs: `rounds` rounds of a number of transfers, or of seconds.

    The implementations take turns round by round, so background load on a shared machine
    hits them alike; a cell's rate is the median of its rounds'."""

    rounds: int
    ops: int | None = None
    seconds: float | None = None

    def describe(self) -> str:
        """For the report."""
        each = f"{self.ops} transfers" if self.ops is not None else f"{self.seconds:g} s"
        return f"{self.rounds} round(s) of {each}"


#: Each round of the Redis part alone (bench/redis_path.py).
REDIS_SLICE_S = 1.0

BUDGETS: dict[Scale, Budget] = {
    "tiny": Budget(rounds=1, ops=64),
    "small": Budget(rounds=3, seconds=2.0),
    "full": Budget(rounds=5, seconds=6.0),
}


def pick_pair(rng: random.Random, pattern: str) -> tuple[int, int]:
    """Sender and recipient account numbers (0..ACCOUNTS-1) for one transfer."""
    if pattern == "hot" and rng.random() < 0.5:
        other = rng.randrange(1, ACCOUNTS)
        return (0, other) if rng.random() < 0.5 else (other, 0)
    a, b = rng.sample(range(ACCOUNTS), 2)
    return a, b


class Transferer(Protocol):
    """One way to move coins."""

    label: str

    async def start(self, callers: int) -> None: ...
    async def transfer(
        self, guild_id: int, sender: int, recipient: int, amount: int, key: str
    ) -> str: ...
    async def stop(self) -> None: ...


class Ours:
    """The bot's own transfer: Bank.transfer with Redis coordination.

    `functions`: the database function (the default) or the model code (before).
    `admitted`: holds an account's Redis lock admits at once (1: a strict mutex, before).
    """

    label = "ours"

    def __init__(
        self,
        db: BenchDatabase,
        redis_url: str,
        functions: bool = True,
        admitted: int = ADMITTED,
    ) -> None:
        self.db, self.redis_url, self.functions = db, redis_url, functions
        self.admitted = admitted
        self.coord: Coordination | None = None
        self.bank: Bank | None = None

    async def start(self, callers: int) -> None:
        """Open Tortoise with one connection per caller and a Redis link."""
        await open_tortoise(self.db.url, callers)
        self.coord = Coordination.from_redis(self.redis_url)
        assert isinstance(self.coord.locks, RedisLocks)
        self.coord.locks.admitted = self.admitted
        self.bank = Services(
            self.coord,
            transfer_max=AMOUNT_MAX,
            grant_max=AMOUNT_MAX,
            bank_functions=self.functions,
        ).bank

    async def transfer(
        self, guild_id: int, sender: int, recipient: int, amount: int, key: str
    ) -> str:
        """One transfer; 'refused' when the sender holds too few coins."""
        assert self.bank is not None
        try:
            await self.bank.transfer(guild_id, sender, recipient, amount, key)
        except InsufficientFunds:
            return "refused"
        return "ok"

    async def stop(self) -> None:
        """Close Redis and the database."""
        if self.coord is not None:
            await self.coord.close()
        await close_database()


class _Refused(Exception):
    pass


class Move(NamedTuple):
    """One transfer's arguments."""

    guild_id: int
    sender: int
    recipient: int
    amount: int
    key: str


class Raw:
    """The cheapest correct transfer: one transaction, row locks, conditional debit."""

    label = "raw asyncpg"
    LOCK = (
        "SELECT id, user_id FROM members WHERE guild_id = $1 AND user_id = ANY($2::bigint[])"
        " ORDER BY id FOR UPDATE"
    )
    DEBIT = "UPDATE members SET coins = coins - $2 WHERE id = $1 AND coins >= $2"
    CREDIT = "UPDATE members SET coins = coins + $2 WHERE id = $1"

    def __init__(self, db: BenchDatabase) -> None:
        self.db = db
        self.pool: asyncpg.Pool | None = None

    async def start(self, callers: int) -> None:
        """A pool with one connection per caller."""
        self.pool = await pg_pool(self.db.dsn, callers)

    async def transfer(
        self, guild_id: int, sender: int, recipient: int, amount: int, key: str
    ) -> str:
        """BEGIN, lock both rows in id order, move the coins (`_move`), COMMIT."""
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    rows = await conn.fetch(self.LOCK, guild_id, [sender, recipient])
                    ids = {r["user_id"]: r["id"] for r in rows}
                    move = Move(guild_id, sender, recipient, amount, key)
                    return await self._move(conn, ids, move)
            except _Refused:
                return "refused"

    async def _move(self, conn: asyncpg.Connection, ids: dict[int, int], move: Move) -> str:
        """Debit if enough (else _Refused, which rolls back), credit. `ids`: row ids by user."""
        if await conn.execute(self.DEBIT, ids[move.sender], move.amount) != "UPDATE 1":
            raise _Refused
        await conn.execute(self.CREDIT, ids[move.recipient], move.amount)
        return "ok"

    async def stop(self) -> None:
        """Close the pool."""
        if self.pool is not None:
            await self.pool.close()


class RawLedger(Raw):
    """Raw asyncpg doing the SQL work ours does: key check, versions, two ledger rows.

    Not a baseline from the brief but a yardstick between the two: raw -> raw + ledger is
    the price of the guarantees in SQL; raw + ledger -> ours is Tortoise, the Redis locks and
    the leaderboard write-through."""

    label = "raw asyncpg + ledger"
    SEEN = "SELECT 1 FROM ledger WHERE idempotency_key = $1"
    DEBIT = (
        "UPDATE members SET coins = coins - $2, version = version + 1"
        " WHERE id = $1 AND coins >= $2 RETURNING coins"
    )
    CREDIT = (
        "UPDATE members SET coins = coins + $2, version = version + 1 WHERE id = $1 RETURNING coins"
    )
    LEDGER = (
        "INSERT INTO ledger (guild_id, user_id, kind, amount, balance_after, actor_id,"
        " counterparty_id, reason, idempotency_key, created_at) VALUES"
        " ($1, $2, 'transfer_out', $4, $5, $2, $3, NULL, $7 || ':out', now()),"
        " ($1, $3, 'transfer_in', $4, $6, $2, $2, NULL, $7 || ':in', now())"
    )

    async def _move(self, conn: asyncpg.Connection, ids: dict[int, int], move: Move) -> str:
        """Key check, debit, credit, ledger rows: with BEGIN, lock and COMMIT, seven round
        trips."""
        if await conn.fetchval(self.SEEN, f"{move.key}:out") is not None:
            return "replayed"
        left = await conn.fetchval(self.DEBIT, ids[move.sender], move.amount)
        if left is None:
            raise _Refused
        got = await conn.fetchval(self.CREDIT, ids[move.recipient], move.amount)
        guild_id, sender, recipient, amount, key = move
        await conn.execute(self.LEDGER, guild_id, sender, recipient, amount, left, got, key)
        return "ok"


class Tutorial(Raw):
    """Read both balances, compute, write absolute values back: no transaction, no lock."""

    label = "tutorial"
    READ = "SELECT coins FROM members WHERE guild_id = $1 AND user_id = $2"
    WRITE = "UPDATE members SET coins = $3 WHERE guild_id = $1 AND user_id = $2"

    async def transfer(
        self, guild_id: int, sender: int, recipient: int, amount: int, key: str
    ) -> str:
        """Each statement commits on its own; concurrent transfers overwrite each other."""
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            have = await conn.fetchval(self.READ, guild_id, sender)
            theirs = await conn.fetchval(self.READ, guild_id, recipient)
            if have < amount:
                return "refused"
            await conn.execute(self.WRITE, guild_id, sender, have - amount)
            await conn.execute(self.WRITE, guild_id, recipient, theirs + amount)
        return "ok"


# --- one cell --------------------------------------------------------------------------------


async def seed_guild(dsn: str, guild_id: int) -> int:
    """ACCOUNTS members with START_COINS each (COPY); returns the guild's total coins."""
    async with connect(dsn) as conn:
        await copy_members(conn, [(guild_id, USER_BASE + i, START_COINS) for i in range(ACCOUNTS)])
    return ACCOUNTS * START_COINS


async def audit(dsn: str, guild_id: int, with_ledger: bool) -> dict[str, Any]:
    """The guild's total coins and, for variants with a ledger, whether it explains every
    balance (START_COINS plus what came in minus what went out)."""
    async with connect(dsn) as conn:
        total = await conn.fetchval("SELECT sum(coins) FROM members WHERE guild_id = $1", guild_id)
        facts: dict[str, Any] = {"total": int(total)}
        if with_ledger:
            facts["ledger_transfers"] = await conn.fetchval(
                "SELECT count(*) FROM ledger WHERE guild_id = $1 AND kind = 'transfer_out'",
                guild_id,
            )
            facts["ledger_mismatches"] = await conn.fetchval(
                """
                SELECT count(*) FROM (
                  SELECT m.coins, $2::bigint + coalesce(sum(CASE l.kind
                      WHEN 'transfer_in' THEN l.amount ELSE -l.amount END), 0) AS explained
                  FROM members m
                  LEFT JOIN ledger l ON l.guild_id = m.guild_id AND l.user_id = m.user_id
                  WHERE m.guild_id = $1
                  GROUP BY m.id, m.coins
                ) t WHERE coins <> explained
                """,
                guild_id,
                START_COINS,
            )
    return facts


def _operation(
    impl: Transferer, guild_id: int, pattern: str, seed: int, phase: str
) -> Callable[[int], Awaitable[str]]:
    """Transfer number i: a pair and an amount from a seeded generator, a unique key."""
    rng = random.Random(seed)

    async def operation(i: int) -> str:
        a, b = pick_pair(rng, pattern)
        amount = rng.randint(1, AMOUNT_MAX)
        key = f"bench:{guild_id}:{phase}:{i}"
        return await impl.transfer(guild_id, USER_BASE + a, USER_BASE + b, amount, key)

    return operation


async def one_round(
    impl: Transferer,
    guild_id: int,
    pattern: str,
    callers: int,
    budget: Budget,
    seed: int,
    ready: Callable[[], Awaitable[object]] | None = None,
) -> tuple[Run, Counter[str], float]:
    """One round: warm up (a transfer per caller, so every connection is open), wait for
    `ready` (the other processes), then measure. The run, the warm-up's outcomes and the
    wall-clock time the measured part started."""
    await impl.start(callers)
    try:
        warm = await closed_loop(
            _operation(impl, guild_id, pattern, seed, f"warm{seed}"), callers, ops=callers
        )
        if ready is not None:
            await ready()
        started = time.time()
        run = await closed_loop(
            _operation(impl, guild_id, pattern, seed + 1, f"run{seed}"),
            callers,
            ops=budget.ops,
            seconds=budget.seconds,
        )
    finally:
        await impl.stop()
    return run, warm.outcomes, started


# --- ours in several processes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildJob:
    """What one child process runs."""

    db: BenchDatabase
    redis_url: str
    guild_id: int
    pattern: str
    callers: int
    budget: Budget
    seed: int
    loop: str  # the parent's event loop: "asyncio" or "uvloop"


async def _child(job: ChildJob, barrier: Barrier) -> dict[str, Any]:
    async with tortoise_context():
        run, warm, started = await one_round(
            Ours(job.db, job.redis_url),
            job.guild_id,
            job.pattern,
            job.callers,
            job.budget,
            job.seed,
            ready=lambda: asyncio.to_thread(barrier.wait, 120),
        )
    return {
        "latencies": run.latencies,
        "outcomes": dict(run.outcomes),
        "warm": dict(warm),
        "cpu": run.cpu,
        "machine": run.machine_busy,
        "started": started,
        "ended": started + run.wall,
    }


def child_main(job: ChildJob, barrier: Barrier, results: Any) -> None:
    """Entry point of a child process (spawned): run the job, put its result on the queue."""
    try:
        with asyncio.Runner(loop_factory=loop_factory(job.loop)) as runner:
            results.put(runner.run(_child(job, barrier)))
    except BaseException:
        barrier.abort()
        results.put({"error": traceback.format_exc()})


async def measure_processes(
    db: BenchDatabase,
    redis_url: str,
    guild_id: int,
    pattern: str,
    callers: int,
    budget: Budget,
    seed: int,
) -> tuple[Run, Counter[str]]:
    """Ours in PROCESSES spawned processes, callers/PROCESSES tasks each, started together."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    share = Budget(
        rounds=1,
        ops=None if budget.ops is None else budget.ops // PROCESSES,
        seconds=budget.seconds,
    )
    processes = [
        ctx.Process(
            target=child_main,
            args=(
                ChildJob(
                    *(db, redis_url, guild_id, pattern, callers // PROCESSES, share),
                    *(seed + 7 * p, running_loop_name()),
                ),
                barrier,
                results,
            ),
        )
        for p in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outputs = [await asyncio.to_thread(results.get, True, 300) for _ in processes]
    except queue_module.Empty:
        raise RuntimeError("a transfer process did not report within 300 s") from None
    finally:
        for process in processes:
            await asyncio.to_thread(process.join, 30)
    errors = [o["error"] for o in outputs if "error" in o]
    if errors:
        raise RuntimeError("a transfer process failed:\n" + errors[0])
    run, warm = Run(), Counter[str]()
    for out in outputs:
        run.merge(Run(out["latencies"], Counter(out["outcomes"]), cpu=out["cpu"]))
        warm.update(out["warm"])
    run.wall = max(o["ended"] for o in outputs) - min(o["started"] for o in outputs)
    run.machine_busy = statistics.mean(o["machine"] for o in outputs)  # the same machine twice
    return run, warm


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Variant:
    """One implementation in one cell: its guild and its rounds so far."""

    label: str
    impl: Transferer | None  # None: ours in PROCESSES processes
    guild_id: int
    before: int
    runs: list[Run]
    warm: Counter[str]

    @property
    def rate(self) -> float:
        """Median transfers/s over the rounds."""
        return statistics.median(r.rate for r in self.runs)

    @property
    def spread(self) -> str:
        """Lowest and highest round rates."""
        rates = [r.rate for r in self.runs]
        return f"{min(rates):,.0f}-{max(rates):,.0f}" if len(rates) > 1 else "-"


async def run_cell(
    ctx: RunContext,
    db: BenchDatabase,
    pattern: str,
    callers: int,
    rng: random.Random,
    budget: Budget,
    alone: bool,
) -> list[tuple[Variant, Run, dict[str, Any]]]:
    """Every implementation at one caller count, taking turns round by round (`alone`: ours
    and the two raw ones only)."""
    impls: list[tuple[str, Transferer | None]] = [
        ("ours", Ours(db, ctx.redis_url)),
        ("ours, one hold per lock (before)", Ours(db, ctx.redis_url, admitted=1)),
        ("ours, model code (before)", Ours(db, ctx.redis_url, functions=False)),
    ]
    if callers == CALLERS[-1]:
        impls.append((f"ours, {PROCESSES} processes x {callers // PROCESSES}", None))
    impls += [
        ("raw asyncpg + ledger", RawLedger(db)),
        ("raw asyncpg", Raw(db)),
        ("tutorial", Tutorial(db)),
    ]
    if alone:
        impls = [(label, impl) for label, impl in impls if label in ALONE]
    variants = []
    for label, impl in impls:
        guild_id = snowflake(rng)
        variants.append(
            Variant(label, impl, guild_id, await seed_guild(db.dsn, guild_id), [], Counter())
        )
    for round_number in range(budget.rounds):
        for v in variants:
            progress(f"{pattern}, {callers} callers, round {round_number + 1}: {v.label}")
            seed = rng.randrange(2**32)
            if v.impl is None:
                measured, warm = await measure_processes(
                    db, ctx.redis_url, v.guild_id, pattern, callers, budget, seed
                )
            else:
                measured, warm, _ = await one_round(
                    v.impl, v.guild_id, pattern, callers, budget, seed
                )
            v.runs.append(measured)
            v.warm.update(warm)
    cells = []
    for v in variants:
        with_ledger = v.label.startswith("ours") or isinstance(v.impl, RawLedger)
        facts = await audit(db.dsn, v.guild_id, with_ledger=with_ledger)
        pooled = Run.pooled(v.runs)
        cell = {
            "pattern": pattern,
            "callers": callers,
            "implementation": v.label,
            **pooled.as_dict(),
            "rate": v.rate,
            "round_rates": [r.rate for r in v.runs],
            "created": facts["total"] - v.before,
            "ok_including_warmup": pooled.outcomes["ok"] + v.warm["ok"],
            **{k: val for k, val in facts.items() if k != "total"},
        }
        cells.append((v, pooled, cell))
    await drop_leaderboard_keys(ctx.redis_url, [v.guild_id for v in variants])  # ours wrote them
    return cells


def only_cell() -> tuple[str, int] | None:
    """BENCH_CELL=PATTERN:CALLERS (e.g. `uniform:8`): that cell alone, or None for every cell."""
    wanted = os.environ.get("BENCH_CELL")
    if not wanted:
        return None
    pattern, _, callers = wanted.partition(":")
    if pattern not in PATTERNS or not callers.isdigit() or int(callers) < 1:
        raise SystemExit(f"BENCH_CELL={wanted!r}: expected PATTERN:CALLERS, e.g. uniform:8")
    return pattern, int(callers)


async def run(ctx: RunContext) -> Result:
    """Every cell: pattern x callers x implementation (or the BENCH_CELL alone)."""
    budget = BUDGETS[ctx.scale]
    if os.environ.get("BENCH_ROUNDS"):
        budget = replace(budget, rounds=int(os.environ["BENCH_ROUNDS"]))
    only = only_cell()
    rng = random.Random(20261126)
    result = ctx.result(
        f"{ACCOUNTS:,} accounts of {START_COINS:,} coins per implementation and cell (a "
        f"fresh guild each), amounts 1-{AMOUNT_MAX}; {budget.describe()} per cell, each "
        "after a warm-up of one transfer per caller, the implementations taking turns; "
        "callers are asyncio tasks in one process unless noted."
    )
    cells: list[dict[str, Any]] = []
    async with fresh_database(ctx.server_url) as db, tortoise_context():
        for pattern, description in PATTERNS.items():
            if only is not None and pattern != only[0]:
                continue
            table = Table(
                f"Transfers, {description}",
                [
                    "callers",
                    "implementation",
                    "transfers/s",
                    "rounds min-max",
                    "p50 ms",
                    "p99 ms",
                    "vs raw",
                    "refused",
                    "coins created (+) / lost (-)",
                    "client CPU",
                    "machine CPU",
                ],
            )
            for callers in CALLERS if only is None else [only[1]]:
                rows = await run_cell(ctx, db, pattern, callers, rng, budget, only is not None)
                raw_rate = next(v.rate for v, _, _ in rows if v.label == "raw asyncpg")
                for variant, pooled, cell in rows:
                    cells.append(cell)
                    table.add(
                        callers,
                        variant.label,
                        variant.rate,
                        variant.spread,
                        pooled.p50_ms,
                        pooled.p99_ms,
                        ratio(variant.rate, raw_rate),
                        pooled.outcomes["refused"],
                        f"{cell['created']:+,}",
                        f"{pooled.cpu_share:.0%}",
                        f"{pooled.machine_share:.0%}",
                    )
            result.tables.append(table)
    if only is None:
        progress("the Redis part alone: a shared connection, one per round trip, redis-py's pool")
        table, result.facts["redis_path"] = await redis_path.compare(
            ctx.redis_url, 2 * budget.rounds, REDIS_SLICE_S
        )
        result.tables.append(table)
    result.facts["cells"] = cells
    result.notes += [
        "transfers/s: the median of the rounds' rates; p50/p99 over every transfer of every "
        "round; vs raw: transfers/s over raw asyncpg's at the same caller count.",
        "client CPU: CPU time of the benchmark process(es) over wall time; 100% is one core "
        "fully busy in Python. machine CPU: how busy all cores were (/proc/stat): PostgreSQL, "
        "Redis, the client and anything else running share them.",
        "coins created/lost: the guild's total after all rounds minus before (warm-ups "
        "included); ours and raw must show +0.",
        "ours (and raw asyncpg + ledger, the same SQL work without Tortoise or Redis) also "
        "writes two ledger rows per transfer and checks its idempotency key; the ledger was "
        "checked to explain every balance after each of their cells.",
    ]
    return result


BENCHMARK = Benchmark(
    "transfers",
    "coin transfers, ours against raw asyncpg and the tutorial",
    run,
)
