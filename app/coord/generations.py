"""Shard generations: a new shard count brought up beside the running one, then switched to.

A generation is a shard count and the sessions that run it. The cluster's record of them lives
in one Redis key, changed only under its fence (compare-and-set), so every pod reads the same
history:

- **active**: the generation that acts on Discord's events (gen 0 is the count the cluster
  started with; no record at all means gen 0 alone).
- **preparing**: started by `python -m app reshard --to N` (or automatically); the pods bring
  its shards up beside the active ones and it acts on nothing.
- at the **switch**, one compare-and-set gives both the same moment T, a time on the clock of
  Discord's snowflake ids, a few seconds ahead (and at least PREPARE_FLOOR_MS after the start):
  the old generation acts on events created before T and the new one on those from T on. An
  event delivered to both (a message, an interaction, an audit-log entry, all carrying a
  snowflake id) is acted on by exactly one of them, whatever the moment each pod learns of the
  switch, provided it learns before T — and a pod holds an event its last read of the record
  does not decide (`Record.decided_until`) until it has read it again.
- **draining**: the old generation after T, closing its sessions; then **retired**.
- **abandoned**: a preparing generation that could not get every shard READY (session-start
  budget, close 4011, a pod lost, too slow); the active one never stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

from app.coord.membership import HANDOVER_KEY
from app.coord.redis_link import RedisLink

KEY = "cluster:generations"
#: Retired and abandoned generations kept in the record, for `shard-plan --live`.
HISTORY = 5
#: How far ahead of the switch decision T lies: every pod reads the record every
#: `REFRESH_EVERY` seconds, so all know T well before it comes.
SWITCH_LEAD_MS = 3_000
REFRESH_EVERY = 0.25
#: A switch comes at least this long after its generation started, so that a record read with
#: no reshard in progress decides every event of the next 10 s: pods cut off from Redis that
#: long keep acting (their shard leases stop them sooner, at 2/3 of LEASE_TTL_S).
PREPARE_FLOOR_MS = 10_000
#: What a pod's clock may differ from Discord's and Redis's: taken off every horizon.
CLOCK_MARGIN_MS = 1_000
#: Discord's epoch in Unix milliseconds (snowflake ids count from it).
DISCORD_EPOCH_MS = 1_420_070_400_000

#: KEYS: the record; ARGV: the fence it must still have, the new record. 1 when written.
_SWAP = """
local cur = redis.call('GET', KEYS[1])
local fence = 0
if cur then fence = cjson.decode(cur)['fence'] end
if fence ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def rounded_up(count: int, multiple: int) -> int:
    """`count` rounded up to a multiple of `multiple` (Discord's max_concurrency)."""
    step = max(1, multiple)
    return max(step, math.ceil(count / step) * step)


def snowflake_ms(snowflake: int) -> int:
    """When a snowflake id was created, in Unix milliseconds."""
    return (snowflake >> 22) + DISCORD_EPOCH_MS


class State(StrEnum):
    """Where a generation is in its life."""

    PREPARING = "preparing"
    ACTIVE = "active"
    DRAINING = "draining"
    RETIRED = "retired"
    ABANDONED = "abandoned"


class Refused(Exception):
    """A change the record does not allow now; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Generation:
    """One shard count and when it acts."""

    number: int
    shard_count: int
    state: State
    #: Events created from this moment on (Unix ms) are its to act on; None: not switched to.
    acts_from: int | None = None
    #: Events created from this moment on are not; None: no switch away from it scheduled.
    acts_until: int | None = None
    #: When it was started (Unix ms, Redis's clock).
    started: int = 0
    #: Why it was started, or why it was abandoned.
    reason: str = ""

    @property
    def key_prefix(self) -> str:
        """The prefix of its shards' Redis keys (leases, sessions, snapshots)."""
        return "shard" if self.number == 0 else f"gen{self.number}:shard"

    @property
    def handover_key(self) -> str:
        """Its shards' handover slot (app/coord/membership.py)."""
        return HANDOVER_KEY if self.number == 0 else f"gen{self.number}:handover"

    def acts_on(self, created_ms: int) -> bool:
        """Whether an event created at `created_ms` is this generation's to act on."""
        if self.acts_from is None or created_ms < self.acts_from:
            return False
        return self.acts_until is None or created_ms < self.acts_until

    def describe(self) -> str:
        """One line: number, count, state and its moments."""
        line = f"generation {self.number}: {self.shard_count} shards, {self.state}"
        if self.state is State.PREPARING and self.acts_from is not None:
            line += f", switching at {self.acts_from}"
        if self.acts_until is not None:
            line += f", acted until {self.acts_until}"
        if self.reason:
            line += f" ({self.reason})"
        return line


@dataclass(frozen=True, slots=True)
class Record:
    """Every generation the cluster knows, under one fence."""

    fence: int = 0
    generations: tuple[Generation, ...] = field(default_factory=tuple)

    @classmethod
    def first(cls, shard_count: int) -> Record:
        """The implicit record of a cluster that never resharded: gen 0 active."""
        return cls(0, (Generation(0, shard_count, State.ACTIVE, acts_from=0),))

    def active(self) -> Generation:
        """The generation in state active (exactly one; until the switch's moment, the old)."""
        return next(g for g in self.generations if g.state is State.ACTIVE)

    def acting_at(self, created_ms: int) -> Generation | None:
        """The generation that acts on an event created at `created_ms`, if any does."""
        return next((g for g in self.live() if g.acts_on(created_ms)), None)

    def in_progress(self) -> Generation | None:
        """The generation being prepared or switched to, if any."""
        return next((g for g in self.generations if g.state is State.PREPARING), None)

    def live(self) -> list[Generation]:
        """Generations whose sessions should run: active, preparing, draining."""
        done = (State.RETIRED, State.ABANDONED)
        return [g for g in self.generations if g.state not in done]

    def get(self, number: int) -> Generation | None:
        """The generation numbered `number`, if the record still has it."""
        return next((g for g in self.generations if g.number == number), None)

    def decided_until(self, read_at_ms: int) -> int:
        """Until when this record, read at `read_at_ms`, decides whose every event is.

        Whatever is written after the read: a generation started after it switches no sooner
        than PREPARE_FLOOR_MS after its start, a switch no sooner than SWITCH_LEAD_MS after it
        is decided, and a new reshard starts only after the one in progress.
        """
        prep = self.in_progress()
        if prep is None:
            return read_at_ms + PREPARE_FLOOR_MS
        if prep.acts_from is None:
            return max(read_at_ms + SWITCH_LEAD_MS, prep.started + PREPARE_FLOOR_MS)
        return max(prep.acts_from, read_at_ms) + PREPARE_FLOOR_MS

    def _with(self, *changed: Generation) -> Record:
        by_number = {g.number: g for g in self.generations}
        by_number.update({g.number: g for g in changed})
        ordered = sorted(by_number.values(), key=lambda g: g.number)
        done = [g for g in ordered if g.state in (State.RETIRED, State.ABANDONED)]
        dropped = {g.number for g in done[:-HISTORY]} if len(done) > HISTORY else set()
        kept = tuple(g for g in ordered if g.number not in dropped)
        return Record(self.fence + 1, kept)

    # -- transitions ------------------------------------------------------------------------
    def start(self, shard_count: int, now_ms: int, reason: str) -> Record:
        """A new preparing generation of `shard_count` shards."""
        if shard_count < 1:
            raise Refused(f"a shard count must be at least 1, not {shard_count}")
        busy = self.in_progress() or next(
            (g for g in self.generations if g.state is State.DRAINING), None
        )
        if busy is not None:
            raise Refused(f"a reshard is in progress: {busy.describe()}")
        active = self.active()
        if active.shard_count == shard_count:
            raise Refused(f"the cluster already runs {shard_count} shards ({active.describe()})")
        number = max(g.number for g in self.generations) + 1
        return self._with(
            Generation(number, shard_count, State.PREPARING, started=now_ms, reason=reason)
        )

    def switch(self, number: int, at_ms: int) -> Record:
        """Schedule the switch to preparing generation `number` at `at_ms`."""
        new = self.get(number)
        if new is None or new.state is not State.PREPARING or new.acts_from is not None:
            raise Refused(f"generation {number} is not waiting for its switch")
        old = self.active()
        at_ms = max(at_ms, new.started + PREPARE_FLOOR_MS)
        return self._with(replace(new, acts_from=at_ms), replace(old, acts_until=at_ms))

    def settle(self, now_ms: int, drain_ms: int) -> Record | None:
        """Move generations on once their moments passed; None when nothing changes.

        After T the new generation is active and the old one draining; `drain_ms` after T the
        old one is retired (its pods closed its sessions by then).
        """
        changed: list[Generation] = []
        for g in self.generations:
            if g.state is State.PREPARING and g.acts_from is not None and now_ms >= g.acts_from:
                changed.append(replace(g, state=State.ACTIVE))
            elif g.state is State.ACTIVE and g.acts_until is not None and now_ms >= g.acts_until:
                changed.append(replace(g, state=State.DRAINING))
            elif (
                g.state is State.DRAINING
                and g.acts_until is not None
                and now_ms >= g.acts_until + drain_ms
            ):
                changed.append(replace(g, state=State.RETIRED))
        return self._with(*changed) if changed else None

    def abandon(self, number: int, reason: str) -> Record:
        """Give up preparing generation `number` (before its switch was scheduled)."""
        gen = self.get(number)
        if gen is None or gen.state is not State.PREPARING:
            raise Refused(f"generation {number} is not preparing")
        if gen.acts_from is not None:
            raise Refused(f"generation {number} is already switching (at {gen.acts_from})")
        return self._with(replace(gen, state=State.ABANDONED, reason=reason))

    # -- storage ----------------------------------------------------------------------------
    def dumps(self) -> str:
        """The record as stored."""
        return json.dumps(
            {"fence": self.fence, "generations": [asdict(g) for g in self.generations]},
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str | bytes) -> Record:
        """The record from its stored form."""
        raw = json.loads(text)
        gens = tuple(Generation(**{**g, "state": State(g["state"])}) for g in raw["generations"])
        return cls(int(raw["fence"]), gens)


class GenerationStore:
    """The record in Redis, read by every pod and changed under its fence."""

    def __init__(self, link: RedisLink, key: str = KEY) -> None:
        self.link = link
        self.key = key

    async def read(self) -> Record | None:
        """The stored record (None: the cluster never resharded)."""
        raw = await self.link.run(lambda r: r.get(self.key))
        return Record.loads(raw) if raw is not None else None

    async def now_ms(self) -> int:
        """Redis's clock in Unix ms: the one clock every pod's decisions share."""
        seconds, micros = await self.link.run(lambda r: r.time())
        return int(seconds) * 1000 + int(micros) // 1000

    async def change(
        self, shard_count: int, change: Callable[[Record, int], Record | None], tries: int = 5
    ) -> Record | None:
        """Apply `change(record, now_ms)` under the fence; the record written (None: no change).

        `shard_count` makes gen 0's record when none is stored.

        Raises Refused from `change`, or when other pods kept changing it `tries` times.
        """
        for _ in range(tries):
            current = await self.read() or Record.first(shard_count)
            updated = change(current, await self.now_ms())
            if updated is None:
                return None
            if await self._swap(current.fence, updated.dumps()):
                return updated
        raise Refused("the generation record kept changing under us; try again")

    async def restore(self, record: Record) -> bool:
        """Write back a record Redis lost (it restarted empty); False if one is there again."""
        return bool(await self.link.run(lambda r: r.set(self.key, record.dumps(), nx=True)))

    async def _swap(self, fence: int, body: str) -> bool:
        """Write `body` if the stored record still has `fence` (or none is stored at fence 0)."""
        return int(await self.link.run(lambda r: r.eval(_SWAP, 1, self.key, fence, body))) == 1


def wall_ms() -> int:
    """This pod's clock in Unix ms (for comparisons padded by CLOCK_MARGIN_MS)."""
    return int(time.time() * 1000)
