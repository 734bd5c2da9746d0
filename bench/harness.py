"""What every benchmark is: a registered `Benchmark` whose `run(ctx)` returns a `Result`.

A benchmark creates its own database on the server (bench/data.py), measures our
implementation and its baselines in the same run (bench/timing.py), and returns tables
(bench/tables.py) plus `facts`: structural checks (coins conserved, cache equal to database,
...) that the test suite asserts without looking at any timing.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from bench.tables import Table

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
    """What a benchmark is given: itself, the scale, the servers, and `--minutes` when given
    (for the benchmarks that run for a while, e.g. bank; None: the scale's default)."""

    benchmark: Benchmark
    scale: Scale
    server_url: str
    redis_url: str
    minutes: float | None = None

    def result(self, summary: str) -> Result:
        """An empty Result of this benchmark at this scale, `summary` saying what ran."""
        return Result(self.benchmark.name, self.benchmark.title, self.scale, summary)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A registered benchmark: its name, its title (the heading of its tables), its run."""

    name: str
    title: str
    run: Callable[[RunContext], Awaitable[Result]]
