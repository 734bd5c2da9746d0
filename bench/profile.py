"""py-spy profiles of bot processes during a benchmark step, and what their samples say.

`Profile` samples one process for a step's length and writes two files: a flame graph
(`<name>.svg`) and the same samples as collapsed stacks (`<name>.txt`, one line per distinct
stack: `frame;frame;... count`), from which `self_time` and `inclusive_time` make the tables of
docs/benchmarks.md. py-spy must be on PATH (`pip install py-spy`); it reads the process from
outside (ptrace), so the bot runs unmodified.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from collections.abc import Iterable
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


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def where(frame: str) -> str:
    """`function (file)` without line numbers or site-packages prefixes."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = re.sub(r"^.*?(site-packages|lib/python3\.\d+)/", "", match["file"])
    return f"{match['func']} ({file})"


def self_time(stacks: Counter[tuple[str, ...]]) -> Counter[str]:
    """Samples whose innermost frame is each function."""
    out: Counter[str] = Counter()
    for frames, count in stacks.items():
        out[where(frames[-1])] += count
    return out


def inclusive_time(stacks: Counter[tuple[str, ...]], match: Iterable[str]) -> Counter[str]:
    """Samples with a frame whose text contains one of `match`, by the first one matched."""
    wanted = list(match)
    out: Counter[str] = Counter()
    for frames, count in stacks.items():
        for needle in wanted:
            if any(needle in frame for frame in frames):
                out[needle] += count
                break
    return out
