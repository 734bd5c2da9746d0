"""The start-up of each shard as an explicit state machine, one log line per change.

    (none) ─► waiting for its lease ─┬─► waiting in the identify queue ─► identifying
                                     │        ▲                              │
                                     │        └──── op 9 (rejected) ◄────────┤
                                     │                                       ▼
                                     └─► loading guilds (saved session) ─► resuming
                                                                             │
              loading guilds (READY seen, GUILD_CREATEs coming) ◄── READY ◄──┘ (identify)
                       │
                       ▼
                     ready

Each phase is bounded: the lease by its holder's renewals (or the new-epoch wait after Redis
lost its data), the identify queue by the holds ahead of it (each at most HOLD_TTL), identifying
by the connect timeout and the fatal-close table (app/bot/fatal.py), loading by discord.py's
guild_ready_timeout after the last GUILD_CREATE (or the REST hydration's per-guild retries).
SIGTERM in any phase stops the shard there (docs/operations.md).
"""

from __future__ import annotations

import logging
from enum import StrEnum

log = logging.getLogger(__name__)


class Phase(StrEnum):
    """Where one shard is in its start-up."""

    WAITING_LEASE = "waiting for its lease"
    QUEUED = "waiting in the identify queue"
    IDENTIFYING = "identifying"
    LOADING = "loading guilds"
    RESUMING = "resuming"
    READY = "ready"


class ShardPhases:
    """The phase of every shard this process is starting or running."""

    def __init__(self) -> None:
        self._phases: dict[int, Phase] = {}

    def enter(self, shard_id: int, phase: Phase, *, quiet: bool = False) -> None:
        """Move a shard to `phase`, logging the change unless `quiet` (the caller logs it)."""
        if self._phases.get(shard_id) != phase:
            self._phases[shard_id] = phase
            if not quiet:
                log.info("shard %d: %s", shard_id, phase.value)

    def of(self, shard_id: int) -> Phase | None:
        """The shard's phase (None when this process does not run it)."""
        return self._phases.get(shard_id)

    def forget(self, shard_id: int) -> None:
        """The shard was given up (or stopped): it has no phase here any more."""
        self._phases.pop(shard_id, None)

    def summary(self) -> str:
        """Every shard's phase, for the line logged when the process stops."""
        if not self._phases:
            return "no shard started"
        return ", ".join(f"shard {s} {p.value}" for s, p in sorted(self._phases.items()))
