"""Timing: percentiles, measured runs, closed and open loops, and a stopwatch."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


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
