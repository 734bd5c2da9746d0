"""py-spy profiles of bot processes during a benchmark step, and what their samples say.

`Profile` samples one process for a step's length and writes two files: a flame graph
(`<name>.svg`) and the same samples as collapsed stacks (`<name>.txt`, one line per distinct
stack: `frame;frame;... count`), from which `by_category` makes the table of
docs/benchmarks.md. py-spy must be on PATH (`pip install py-spy`); it reads the process from
outside (ptrace), so the bot runs unmodified.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path
from types import TracebackType

#: Samples per second.
RATE = 200
#: How long py-spy may take after the step to write its files.
FINISH_S = 30.0


class Profile:
    """`async with Profile(pid, path, seconds):` records `pid` for `seconds` (two samplers)."""

    def __init__(self, pid: int, path: Path, seconds: float) -> None:
        self.pid, self.path, self.seconds = pid, path, seconds
        self._procs: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Profile:
        """Start the samplers: one writes the flame graph, the other the collapsed stacks."""
        spy = shutil.which("py-spy")
        if spy is None:
            raise RuntimeError("BENCH_PROFILE is set but py-spy is not on PATH: pip install py-spy")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for fmt, suffix in (("flamegraph", ".svg"), ("raw", ".txt")):
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    *(spy, "record", "--pid", str(self.pid), "--rate", str(RATE)),
                    *("--duration", str(max(1, round(self.seconds))), "--nonblocking"),
                    *("--format", fmt, "--output", str(self.path.with_suffix(suffix))),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Wait for the files (py-spy stops by itself after its duration)."""
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), FINISH_S)
            except TimeoutError:
                proc.kill()


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (`a;b;c 12` per line), outermost frame first."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


#: Where a sample's innermost frame runs, by the first match in its text.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernel send/receive (socket write, epoll)", ("selector_events.py", "selectors.py")),
    ("asyncio event loop", ("asyncio/",)),
    ("aiohttp (REST requests)", ("aiohttp/", "yarl/", "multidict/")),
    ("discord.py (gateway, models, webhooks)", ("discord/",)),
    ("json", ("json/",)),
    ("redis-py + hiredis", ("redis/",)),
    ("asyncpg", ("asyncpg/",)),
    ("Tortoise ORM + pypika", ("tortoise/", "pypika")),
    ("our code (app/)", ("app/",)),
    ("prometheus_client, logging", ("prometheus_client/", "logging/")),
)
OTHER = "other"


def by_category(stacks: Counter[tuple[str, ...]]) -> Counter[str]:
    """Samples by where their innermost frame runs (CATEGORIES, else OTHER)."""
    out: Counter[str] = Counter()
    for frames, count in stacks.items():
        leaf = frames[-1]
        name = next((n for n, keys in CATEGORIES if any(k in leaf for k in keys)), OTHER)
        out[name] += count
    return out
