"""python -m bench [NAME ...] [--scale tiny|small|full] [--minutes N] [--loop asyncio|uvloop]
[--output PATH | --no-write] [--json PATH]

Runs the named benchmarks (all of them without a name) against TEST_DATABASE_URL and
TEST_REDIS_URL, prints their tables and writes each one's section of docs/benchmarks.md.
`make bench NAME=transfers` or `bash scripts/bench.sh transfers -- --scale full` start
throwaway servers first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from app.db.postgres import asyncpg_dsn
from app.ops.event_loop import loop_factory
from bench import registry
from bench.harness import SCALES, MissingServers, Result, RunContext, Scale, server_urls
from bench.report import DEFAULT_OUTPUT, environment, render, write_section


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line; a bare `--` (as scripts/bench.sh passes it through) is ignored."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=" ".join(__doc__.split("\n\n")[1].split()),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--scale", choices=SCALES, default="small", help="data and run size")
    parser.add_argument(
        "--minutes",
        type=float,
        help="how long the long-running benchmarks (bank) run; default: the scale's",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of this process, where in-process implementations and the sandbox"
        " run (bot processes run on their EVENT_LOOP)",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown report")
    out.add_argument("--no-write", action="store_true", help="print only, write no report")
    parser.add_argument("--json", type=Path, help="also write results and facts as JSON here")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args([a for a in argv if a != "--"])
    unknown = [n for n in args.names if n not in registry.names()]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; try --list")
    return args


def recorded(argv: list[str]) -> list[str]:
    """The arguments as the report records them: without `--` and without `--json PATH`,
    which only adds a copy of the results and changes no figure."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg == "--" or arg.startswith("--json="):
            skip = False
            continue
        if arg == "--json":
            skip = True
            continue
        kept.append(arg)
    return kept


async def run_one(
    name: str, scale: Scale, command: str, output: Path | None, minutes: float | None = None
) -> Result:
    """Run one benchmark, print its tables and write its section."""
    server_url, redis_url = server_urls()
    benchmark = registry.load(name)
    print(f"[bench] {name} at scale {scale} ...", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = await benchmark.run(RunContext(benchmark, scale, server_url, redis_url, minutes))
    seconds = time.perf_counter() - started
    load = (load_before, os.getloadavg()[0])
    print(result.text(), flush=True)
    print(f"\n[{name} took {seconds:.1f} s]\n", flush=True)
    result.facts["seconds"] = seconds
    result.facts["load_average"] = load
    if output is not None:
        env = await environment(asyncpg_dsn(server_url), redis_url)
        write_section(output, name, render(result, env, command, seconds, load))
        print(f"[bench] wrote the {name} section of {output}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.list:
        for name in registry.names():
            print(f"{name:12} {registry.load(name).title}")
        return 0
    command = shlex.join(["python", "-m", "bench", *recorded(argv)])
    try:
        server_urls()
    except MissingServers as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    failed: list[str] = []
    for name in args.names or registry.names():
        try:
            with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
                result = runner.run(
                    run_one(
                        name,
                        args.scale,
                        command,
                        None if args.no_write else args.output,
                        args.minutes,
                    )
                )
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        results[name] = {
            "scale": result.scale,
            "facts": result.facts,
            "tables": [t.as_dict() for t in result.tables],
        }
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
