"""Shared parts of every benchmark: throwaway databases, timing, percentiles and tables.

A benchmark is an async function `run(ctx) -> Result`. It creates its own database on the
server (random name, migrated to head, dropped at the end), measures our implementation and its
baselines in the same run, and returns tables plus `facts`: structural checks (coins conserved,
cache equal to database, ...) that the test suite asserts without looking at any timing.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as redis
from tortoise.context import TortoiseContext

from app.db.connect import close_database, open_database
from app.db.migrate import asyncpg_dsn, run_migrations

Scale = Literal["tiny", "small", "full"]
SCALES: tuple[Scale, ...] = ("tiny", "small", "full")


class MissingServers(RuntimeError):
    """TEST_DATABASE_URL or TEST_REDIS_URL is not set."""


BENCH_REDIS_DB = 15


def server_urls() -> tuple[str, str]:
    """(PostgreSQL server URL, Redis URL) from the environment, as scripts/bench.sh sets them.

    Benchmarks use Redis logical database BENCH_REDIS_DB (env BENCH_REDIS_DB), not the one in
    TEST_REDIS_URL: the test suite FLUSHDBs its database between tests, which would empty a
    leaderboard cache in the middle of a run on a shared server. PostgreSQL needs no such care:
    every benchmark creates a database of its own.
    """
    pg, rd = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if not pg or not rd:
        raise MissingServers(
            "TEST_DATABASE_URL and TEST_REDIS_URL must be set; "
            "`make bench` / `bash scripts/bench.sh NAME` start throwaway servers and set them"
        )
    db = int(os.environ.get("BENCH_REDIS_DB", BENCH_REDIS_DB))
    return pg, urlunsplit(urlsplit(rd)._replace(path=f"/{db}"))


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the tables)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def snowflake(rng: random.Random | None = None) -> int:
    """A random id in the range Discord snowflakes occupy today."""
    return 10**17 + (rng.randrange(10**18) if rng is not None else secrets.randbelow(10**18))


# --- databases -------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


async def create_database(server_url: str, prefix: str = "bench") -> str:
    """Create an empty database with a random name on the server; its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    """Drop a database made by create_database, closing its sessions."""
    name = url.rpartition("/")[2]
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """A migrated database of this run's own."""

    url: str  # postgres://... (Tortoise)
    dsn: str  # postgresql://... (asyncpg)


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str = "bench") -> AsyncIterator[BenchDatabase]:
    """Create a database with a random name, migrate it to head, drop it on exit."""
    url = await create_database(server_url, prefix)
    try:
        await run_migrations(url)
        yield BenchDatabase(url, asyncpg_dsn(url))
    finally:
        await drop_database(server_url, url)


@asynccontextmanager
async def tortoise_context() -> AsyncIterator[None]:
    """A Tortoise context for this benchmark's tasks; closes whatever was opened in it."""
    with TortoiseContext():
        try:
            yield
        finally:
            await close_database()


async def open_tortoise(url: str, connections: int) -> None:
    """(Re)open Tortoise with a pool of exactly `connections` connections."""
    await open_database(url, pool_min=connections, pool_max=connections)


async def pg_pool(dsn: str, connections: int) -> asyncpg.Pool:
    """An asyncpg pool of exactly `connections` connections (for the raw baselines)."""
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None
    return pool


MEMBER_COLUMNS = (
    "guild_id",
    "user_id",
    "display_name",
    "coins",
    "xp",
    "level",
    "version",
    "first_seen",
    "last_daily_at",
    "last_xp_at",
)


def member_row(guild_id: int, user_id: int, coins: int, now: datetime) -> tuple[Any, ...]:
    """A `members` row for COPY, every column given (the table has no SQL defaults)."""
    return (guild_id, user_id, "", coins, 0, 0, 0, now, None, None)


async def copy_members(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Bulk-load member rows made by `member_row` with COPY."""
    await conn.copy_records_to_table("members", records=rows, columns=list(MEMBER_COLUMNS))


async def vacuum_analyze(dsn: str, *tables: str) -> None:
    """VACUUM ANALYZE after a bulk load: fresh statistics and a visibility map."""
    conn = await asyncpg.connect(dsn)
    try:
        for table in tables:
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def drop_leaderboard_keys(redis_url: str, guild_ids: Sequence[int]) -> None:
    """Delete the leaderboard cache keys of these guilds (never FLUSHDB: the server may be
    shared). RedisLeaderboard keys a guild's entries as lb:{guild_id}:..."""
    client = redis.Redis.from_url(redis_url)
    try:
        for guild_id in guild_ids:
            keys = [k async for k in client.scan_iter(match=f"lb:{{{guild_id}}}:*", count=1_000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


# --- timing ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True)
class Run:
    """What a measured run did: per-operation latencies (s), outcomes, wall and CPU time."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0
    cpu: float = 0.0  # CPU seconds used by the measuring process(es)
    machine_busy: float = 0.0  # core-seconds the whole machine was busy (all processes)

    @property
    def ops(self) -> int:
        """Operations completed."""
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.ops / self.wall if self.wall > 0 else math.nan

    @property
    def p50_ms(self) -> float:
        """Median latency in milliseconds."""
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        """99th percentile latency in milliseconds."""
        return percentile(self.latencies, 99) * 1000

    @property
    def cpu_share(self) -> float:
        """CPU time over wall time: 1.0 means one core fully busy."""
        return self.cpu / self.wall if self.wall > 0 else math.nan

    @property
    def machine_share(self) -> float:
        """How busy the machine's cores were, 0..1 (everything on it, not only this run)."""
        cores = os.cpu_count() or 1  # /proc/stat counts in 10 ms ticks: cap short runs' noise
        return min(1.0, self.machine_busy / (self.wall * cores)) if self.wall > 0 else math.nan

    def merge(self, other: Run) -> None:
        """Add another process's run (wall time is set by the caller)."""
        self.latencies += other.latencies
        self.outcomes.update(other.outcomes)
        self.cpu += other.cpu
        self.machine_busy += other.machine_busy

    @classmethod
    def pooled(cls, runs: Sequence[Run]) -> Run:
        """Several rounds as one: latencies and outcomes together, wall and CPU time summed."""
        total = cls()
        for one in runs:
            total.merge(one)
            total.wall += one.wall
        return total

    def as_dict(self) -> dict[str, Any]:
        """A summary fit for JSON."""
        return {
            "ops": self.ops,
            "rate": self.rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "cpu_share": self.cpu_share,
            "machine_share": self.machine_share,
            "outcomes": dict(self.outcomes),
        }


def machine_busy_seconds() -> float:
    """Core-seconds all CPUs have spent not idle since boot (/proc/stat); NaN elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


async def closed_loop(
    operation: Callable[[int], Awaitable[str]],
    callers: int,
    *,
    ops: int | None = None,
    seconds: float | None = None,
) -> Run:
    """`callers` tasks call `operation(i)` back to back, for `ops` calls in all or `seconds`
    (given both, until the first of the two is reached).

    Each call returns an outcome label ("ok", "refused", ...), counted in the result; its
    latency is measured around the call alone.
    """
    if ops is None and seconds is None:
        raise ValueError("give ops, seconds or both")
    run = Run()
    counter = 0
    deadline = math.inf

    async def caller() -> None:
        nonlocal counter
        while time.perf_counter() < deadline and (ops is None or counter < ops):
            i = counter
            counter += 1
            started = time.perf_counter()
            outcome = await operation(i)
            run.latencies.append(time.perf_counter() - started)
            run.outcomes[outcome] += 1

    cpu0, busy0, wall0 = time.process_time(), machine_busy_seconds(), time.perf_counter()
    if seconds is not None:
        deadline = wall0 + seconds
    await asyncio.gather(*(caller() for _ in range(callers)))
    run.wall = time.perf_counter() - wall0
    run.cpu = time.process_time() - cpu0
    run.machine_busy = machine_busy_seconds() - busy0
    return run


async def open_loop(operation: Callable[[int], Awaitable[str]], rate: float, seconds: float) -> Run:
    """Start `operation(i)` at a fixed `rate` per second for `seconds`, whatever the answers.

    Unlike `closed_loop`, a slow answer does not slow the sender down (as people do not wait
    for each other): what a fixed offered load costs in latency. Each call's latency is
    measured from its scheduled start; wall time runs from the first start to the last answer.
    """
    run = Run()
    count = max(1, round(rate * seconds))

    async def one(i: int, due: float) -> None:
        outcome = await operation(i)
        run.latencies.append(time.perf_counter() - due)
        run.outcomes[outcome] += 1

    cpu0, busy0, wall0 = time.process_time(), machine_busy_seconds(), time.perf_counter()
    tasks = []
    for i in range(count):
        due = wall0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    run.wall = time.perf_counter() - wall0
    run.cpu = time.process_time() - cpu0
    run.machine_busy = machine_busy_seconds() - busy0
    return run


async def interleaved(
    operations: Mapping[str, Callable[[int], Awaitable[Any]]], count: int, warmup: int = 5
) -> dict[str, Run]:
    """Latency of several queries from one caller, each called `count` times, taking turns.

    Taking turns exposes every query to the same background noise (the machine may be shared),
    which running one query's calls after the other's would not. `warmup` unmeasured rounds
    come first; the calls get indexes warmup.. so they may pick their inputs by index.
    """
    for i in range(warmup):
        for operation in operations.values():
            await operation(i)
    runs = {name: Run() for name in operations}
    for i in range(warmup, warmup + count):
        for name, operation in operations.items():
            cpu, started = time.process_time(), time.perf_counter()
            await operation(i)
            elapsed = time.perf_counter() - started
            run = runs[name]
            run.latencies.append(elapsed)
            run.outcomes["ok"] += 1
            run.wall += elapsed
            run.cpu += time.process_time() - cpu
    return runs


@asynccontextmanager
async def stopwatch() -> AsyncIterator[list[float]]:
    """`async with stopwatch() as t:` ... then t[0] is the elapsed seconds."""
    elapsed: list[float] = []
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - started)


# --- results and tables ----------------------------------------------------------------------

Cell = str | int | float | None


def fmt(value: Cell, digits: int = 2) -> str:
    """A table cell: thousands separators for integers, `digits` decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.{digits}f}"
    return value


def ratio(numerator: float, denominator: float) -> str:
    """`numerator / denominator` as "12x" (one decimal below 10)."""
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return "-"
    value = numerator / denominator
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


@dataclass
class Table:
    """A titled table; numbers are right-aligned, text left-aligned."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        """Append a row."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def _numeric(self, index: int) -> bool:
        values = [row[index] for row in self.rows if row[index] is not None]
        return bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )

    def text(self) -> str:
        """Plain aligned text for the terminal."""
        cells = [self.columns, *[[fmt(c) for c in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        numeric = [self._numeric(i) for i in range(len(self.columns))]

        def line(row: list[str]) -> str:
            return "  ".join(
                v.rjust(w) if n else v.ljust(w)
                for v, w, n in zip(row, widths, numeric, strict=True)
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([self.title, line(cells[0]), rule, *(line(r) for r in cells[1:])])

    def markdown(self) -> str:
        """A GitHub-flavoured Markdown table under a bold title."""
        numeric = [self._numeric(i) for i in range(len(self.columns))]
        head = "| " + " | ".join(self.columns) + " |"
        align = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
        body = ["| " + " | ".join(fmt(c) for c in row) + " |" for row in self.rows]
        return "\n".join([f"**{self.title}**", "", head, align, *body])

    def as_dict(self) -> dict[str, Any]:
        """Raw cells, for JSON."""
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


@dataclass
class Result:
    """What a benchmark hands back: tables, notes for the reader, facts for the tests."""

    name: str
    title: str
    scale: Scale
    summary: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    #: The database and Redis lines of the report, for a benchmark that ran against servers
    #: of its own instead of TEST_DATABASE_URL / TEST_REDIS_URL (None: those).
    servers: list[str] | None = None

    def text(self) -> str:
        """Every table as plain text, then the notes."""
        parts = [f"== {self.name} ({self.scale}): {self.title}"]
        parts += [table.text() for table in self.tables]
        if self.notes:
            parts.append("\n".join(f"* {note}" for note in self.notes))
        return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a benchmark is given: the scale, the servers, and `--minutes` when given (for
    the benchmarks that run for a while, e.g. bank; None: the scale's default)."""

    scale: Scale
    server_url: str
    redis_url: str
    minutes: float | None = None


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A registered benchmark."""

    name: str
    title: str
    run: Callable[[RunContext], Awaitable[Result]]
