"""Where and how a benchmark ran, and its section of docs/benchmarks.md.

Each benchmark owns the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`;
writing replaces only that span, appends it when missing, and creates the file when needed.
Everything outside the markers (the introduction, the interpretation) is left as it is.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.data import connect, redis_version
from bench.harness import Result

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
NEW_FILE_HEADER = (
    "# Benchmarks\n\nSections between `bench:` markers are written by `python -m bench`.\n"
)


@dataclass(frozen=True, slots=True)
class Environment:
    """The machine and the software versions a run measured."""

    cpu: str
    cores: int
    ram_gib: float
    os: str
    python: str
    packages: str
    postgres: str
    postgres_settings: str
    redis: str

    def lines(self) -> list[str]:
        """One line per fact, for the report."""
        return [
            f"Machine: {self.cpu}, {self.cores} cores, {self.ram_gib:.0f} GiB RAM ({self.os})",
            f"Python {self.python} ({self.packages})",
            f"PostgreSQL {self.postgres} ({self.postgres_settings}), same machine",
            f"Redis {self.redis}, same machine",
        ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _versions(*names: str) -> str:
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


async def environment(dsn: str, redis_url: str) -> Environment:
    """Ask the machine and both servers what they are."""
    async with connect(dsn) as conn:
        version = await conn.fetchval("SHOW server_version")
        settings = []
        for name in (
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "shared_buffers",
            "max_connections",
        ):
            settings.append(f"{name}={await conn.fetchval(f'SHOW {name}')}")
    return Environment(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_gib=_ram_gib(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        packages=_versions("asyncpg", "tortoise-orm", "redis"),
        postgres=str(version).split()[0],
        postgres_settings=", ".join(settings),
        redis=await redis_version(redis_url),
    )


def render(
    result: Result,
    env: Environment,
    command: str,
    seconds: float,
    load: tuple[float, float] | None = None,
) -> str:
    """The Markdown of one benchmark's section (without the markers).

    `load` is the 1-minute load average before and after the run: other work on the machine
    shows there, and figures taken under load are not comparable with quiet ones."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Results: {result.title}",
        "",
        f"Scale `{result.scale}`: {result.summary}",
        "",
        f"- Command: `{command}`",
        f"- Date: {when}; the whole benchmark took {seconds:.0f} s",
        *(f"- {line}" for line in env.lines()[:2]),
        *(f"- {line}" for line in (result.servers or env.lines()[2:])),
    ]
    if load is not None:
        lines.append(
            f"- Load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} "
            f"on {env.cores} cores"
        )
    lines.append("")
    for table in result.tables:
        lines += [table.markdown(), ""]
    if result.notes:
        lines += [f"- {note}" for note in result.notes]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of a benchmark's section."""
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_section(document: str, name: str, body: str) -> str:
    """The document with `name`'s section replaced by `body` (appended when missing)."""
    start, end = markers(name)
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    return document.rstrip() + "\n\n" + block + "\n"


def write_section(path: Path, name: str, body: str) -> None:
    """Write a benchmark's section into the file at `path`, creating the file if needed."""
    document = path.read_text() if path.exists() else NEW_FILE_HEADER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(document, name, body))
