"""Discord snowflake ids: generation, timestamps and shard placement.

A snowflake is ``(ms since 2015-01-01) << 22 | worker << 17 | process << 12 | increment``.
Discord routes a guild to shard ``(guild_id >> 22) % shard_count``, so the timestamp part alone
decides the shard: :func:`guild_id_for_shard` picks a timestamp that lands on a chosen shard.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DISCORD_EPOCH_MS = 1_420_070_400_000
#: The worker id of backdated ids (late deliveries): never one that `next` hands out.
LATE_WORKER = 31
#: 2019-01-01, used for the ids of things that "already existed" (guilds, users, roles).
HISTORIC_BASE_MS = 1_546_300_800_000


def snowflake_at(ms: int, increment: int = 0, *, worker: int = 1, process: int = 0) -> int:
    """Return the snowflake for a unix time in milliseconds."""
    return ((ms - DISCORD_EPOCH_MS) << 22) | (worker << 17) | (process << 12) | (increment & 0xFFF)


def timestamp_ms(snowflake: int) -> int:
    """Unix time in milliseconds at which ``snowflake`` was made."""
    return (snowflake >> 22) + DISCORD_EPOCH_MS


def shard_for(guild_id: int, shard_count: int) -> int:
    """The shard Discord routes ``guild_id`` to."""
    return (guild_id >> 22) % shard_count


def guild_id_for_shard(
    shard_id: int, shard_count: int, index: int = 0, *, base_ms: int = HISTORIC_BASE_MS
) -> int:
    """A deterministic guild id on ``shard_id`` of ``shard_count``; distinct for each ``index``."""
    if not 0 <= shard_id < shard_count:
        raise ValueError(f"shard {shard_id} is not in 0..{shard_count - 1}")
    offset = base_ms - DISCORD_EPOCH_MS
    offset += (shard_id - offset) % shard_count
    offset += index * shard_count
    return snowflake_at(offset + DISCORD_EPOCH_MS)


class SnowflakeGenerator:
    """Monotonic snowflake source.

    With no ``start_ms`` it follows the wall clock (ids for live objects: messages, interactions).
    With ``start_ms`` the clock stands still at that instant and ids only increment, which gives
    reproducible "historic" ids for generated worlds.
    """

    def __init__(self, start_ms: int | None = None, *, worker: int = 1) -> None:
        self._clock: Callable[[], int] = (
            (lambda: int(time.time() * 1000)) if start_ms is None else (lambda: start_ms)
        )
        self._worker = worker
        self._last_ms = 0
        self._increment = 0
        self._late_increment = 0

    def next(self) -> int:
        """Return a new id, greater than every id returned before."""
        ms = max(self._clock(), self._last_ms)
        if ms == self._last_ms:
            self._increment += 1
            if self._increment > 0xFFF:
                ms += 1
                self._increment = 0
        else:
            self._increment = 0
        self._last_ms = ms
        return snowflake_at(ms, self._increment, worker=self._worker)

    def backdated(self, seconds: float) -> int:
        """An id made `seconds` ago on the wall clock (a late delivery), from a worker of its
        own, so that it never equals an id of `next`."""
        self._late_increment = (self._late_increment + 1) & 0xFFF
        ms = int((time.time() - seconds) * 1000)
        return snowflake_at(ms, self._late_increment, worker=LATE_WORKER)
