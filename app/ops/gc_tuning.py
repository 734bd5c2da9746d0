"""Garbage collection for a process whose guild cache is large and long-lived.

CPython's cyclic collector scans the objects it tracks: a young generation after every
`threshold0` net allocations, and now and then all of them. A bot process's cache (guilds,
members, roles, channels: hundreds of thousands of objects) is in every full scan, although it
lives as long as the shard is served. Measured in `python -m bench commands` (docs/benchmarks.md,
"Commands end to end"): with CPython's defaults a bot process spent 14 % of its CPU at
saturation in the collector, a full collection taking about 90 ms.

- `tune` (at start) raises the young generation's threshold from 700 to `YOUNG_THRESHOLD`
  allocations: a command's short-lived objects are freed by reference counting before a
  collection would scan them, so fewer collections scan fewer survivors.
- `freeze`, each time a shard's guilds are loaded, moves every object then alive into the
  permanent generation, which no collection scans (`gc.freeze`).
- `thaw`, when guilds leave the cache (a shard handed over, a shard generation retired), gives
  the permanent generation back to the collector (`gc.unfreeze`): a guild and its members refer
  to each other, and those cycles are garbage only a collection frees. The next loaded shard
  freezes again.

Only the bot's own process tunes (`python -m app run`); elsewhere (tests, the sandbox
console) `freeze` and `thaw` do nothing.
"""

from __future__ import annotations

import gc

#: Net allocations between two collections of the young generation (CPython's default: 700).
YOUNG_THRESHOLD = 10_000

_tuned = False


def tune() -> None:
    """Raise the young generation's threshold; from now on `freeze` and `thaw` act."""
    global _tuned
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    _tuned = True


def freeze() -> None:
    """Keep every object alive now out of all future collections (a shard's guilds loaded)."""
    if _tuned:
        gc.freeze()


def thaw() -> None:
    """Let collections see the frozen objects again (guilds left the cache)."""
    if _tuned:
        gc.unfreeze()
