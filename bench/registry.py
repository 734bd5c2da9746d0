"""The registered benchmarks, by name, in the order `python -m bench` runs them.

Each entry names a module that defines `BENCHMARK` (a `bench.harness.Benchmark`); modules are
imported only when their benchmark runs. A new benchmark is one module and one line here.
The first three measure the database layer; the others run bot processes against the
sandbox (bench/processes.py, bench/traffic.py; their servers and processes come from
testsupport/).
"""

from __future__ import annotations

import importlib

from bench.harness import Benchmark

MODULES: dict[str, str] = {
    "transfers": "bench.transfers",
    "leaderboard": "bench.leaderboard",
    "history": "bench.history",
    "search": "bench.search",
    "commands": "bench.commands",
    "memory": "bench.memory",
    "startup": "bench.startup",
    "bank": "bench.bank",
    "budget": "bench.budget",
    "scale": "bench.scale",
    "reshard": "bench.reshard",
}


def names() -> list[str]:
    """Every registered name, in running order."""
    return list(MODULES)


def load(name: str) -> Benchmark:
    """The benchmark registered under `name` (KeyError when unknown)."""
    benchmark = importlib.import_module(MODULES[name]).BENCHMARK
    assert isinstance(benchmark, Benchmark) and benchmark.name == name
    return benchmark
