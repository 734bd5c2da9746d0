"""Bot processes for the Discord-level benchmarks, and what /proc says about them.

A benchmark's bot processes (testsupport.processes.BotProcess) are `python -m app run`, as a
pod runs it, or the bench's own bare discord.py bot (`python -m bench.barebot`), pointed at an
in-process sandbox. `Pods` starts either kind with the run's database, Redis, log directory
and shared settings; their CPU time and resident memory are read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.data import BenchDatabase, fresh_database
from bench.harness import RunContext
from sandbox import SandboxServer
from testsupport.bots import bot_env
from testsupport.processes import BotProcess
from testsupport.servers import PrivateRedis

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Log lines a benchmark's process keeps in memory (the whole log is in its file).
TAIL = 200


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS in /proc/PID/status; VmHWM: its peak so far);
    0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/PID/stat); NaN when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = raw.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu(processes: list[BotProcess]) -> float:
    """CPU seconds the processes have used so far, together."""
    return sum(cpu_seconds(p.pid) for p in processes)


@dataclass(frozen=True)
class Pods:
    """Where a benchmark's bot processes run: its database, its Redis, its log directory, and
    the environment they all share (SHARD_COUNT, IDENTIFY_WINDOW_S, ...)."""

    db: BenchDatabase
    redis_url: str
    logs: Path
    shared: dict[str, str] = field(default_factory=dict)

    def guildbot(
        self, name: str, server: SandboxServer, keep: int | None = TAIL, **env: str
    ) -> BotProcess:
        """`python -m app run` against `server`, on this database and Redis; the last `keep`
        log lines in memory (None: all)."""
        return BotProcess.guildbot(
            name,
            server,
            self.logs,
            keep=keep,
            DATABASE_URL=self.db.url,
            REDIS_URL=self.redis_url,
            **{"LOG_LEVEL": "WARNING", **self.shared, **env},
        )

    def barebot(self, name: str, server: SandboxServer, **env: str) -> BotProcess:
        """`python -m bench.barebot` against `server` (no database, no Redis)."""
        child = bot_env(server, **{**self.shared, **env})
        return BotProcess(name, child, self.logs, module="bench.barebot", args=(), keep=TAIL)


@asynccontextmanager
async def pods_for(ctx: RunContext, **shared: str) -> AsyncIterator[Pods]:
    """A log directory, a Redis of the run's own and a fresh database on the server."""
    with workdir(f"bench-{ctx.benchmark.name}-") as logs:
        async with PrivateRedis() as own_redis, fresh_database(ctx.server_url) as db:
            yield Pods(db, own_redis.url, logs, shared)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A directory for the bot processes' logs: removed after a clean run, kept (and named on
    stderr) when the benchmark failed, or always with BENCH_KEEP_LOGS=1."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException:
        print(f"  .. bot logs kept in {path}", file=sys.stderr, flush=True)
        raise
    if os.environ.get("BENCH_KEEP_LOGS") == "1":
        print(f"  .. bot logs kept in {path}", file=sys.stderr, flush=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
