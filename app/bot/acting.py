"""Which events a client acts on, when two shard generations receive the same ones.

During a reshard a process may run two clients (app/bot/resharding.py): one per generation,
each with its own sessions, and Discord delivers a guild's events to both. The events that
start something carry a snowflake id (a message, an interaction, an audit-log entry), so the
switch's moment T decides each of them alone (app/coord/generations.py): the old generation
acts on those created before T, the new one on those from T on. Everything else (a guild or
member update) only updates the cache, and every client keeps its own cache current.

A client decides only from a record read recently enough: an event created later than what
the last read decides (`Record.decided_until`, less a clock margin: 9 s after the read when no
reshard is in progress, 2 s while one is being prepared) is held until the next read says whose
it is. Redis away that long holds commands; they run, or miss their deadline and are refused,
once it answers (with no reshard in progress the shard leases stop the shards first).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Any

from discord.ext import commands

from app.bot import discord_internals as internals
from app.coord.generations import CLOCK_MARGIN_MS, Generation, Record, snowflake_ms
from app.coord.shard_plan import shard_for_guild
from app.ops import metrics

log = logging.getLogger(__name__)

#: The gateway events that start something the bot does, each with the snowflake `id` of what
#: it reports (message, interaction, audit-log entry).
ACTED_EVENTS = ("MESSAGE_CREATE", "INTERACTION_CREATE", "GUILD_AUDIT_LOG_ENTRY_CREATE")
#: Events held at most: past this a client that cannot read the record drops the oldest.
MAX_HELD = 10_000


class Decision(Enum):
    """What a client does with one event."""

    ACT = "act"
    SKIP = "skip"
    WAIT = "wait"


class ActingGate:
    """One client's view of its generation, and the events it holds until that view is fresh.

    Without resharding (no Redis, or a fixed shard list) the gate always acts.
    """

    def __init__(self, number: int | None) -> None:
        #: The generation this client runs (None: no generations, always act).
        self.number = number
        self.generation: Generation | None = None
        #: Events created before this moment (Unix ms) are decided by the record read last.
        self.known_until = 0
        #: Per shard, the creation time (Unix ms) of the newest such event received: the old
        #: generation ends a session only once it has received every event before the switch.
        self.newest: dict[int, int] = {}
        #: The client's shard count (for `newest`), set by `install`.
        self.shard_count = 1
        self._held: deque[Callable[[], None]] = deque()

    @property
    def held(self) -> int:
        """Events waiting for a fresher record."""
        return len(self._held)

    def update(self, record: Record, read_at_ms: int) -> None:
        """A record read at `read_at_ms` (this pod's clock); held events are decided again."""
        if self.number is None:
            return
        self.generation = record.get(self.number)
        self.known_until = record.decided_until(read_at_ms) - CLOCK_MARGIN_MS
        pending, self._held = self._held, deque()
        while pending:
            again = pending.popleft()
            if self._held:  # an earlier one is still waiting: keep the order
                self._held.append(again)
            else:
                again()  # decides anew; holds itself again if it must still wait

    def decide(self, created_ms: int) -> Decision:
        """Act on, skip, or hold an event created at `created_ms`."""
        if self.number is None:
            return Decision.ACT
        if created_ms >= self.known_until:
            return Decision.WAIT
        if self.generation is not None and self.generation.acts_on(created_ms):
            return Decision.ACT
        return Decision.SKIP

    def acting_now(self, now_ms: int) -> bool:
        """Whether this client acts at `now_ms` (for work no event starts: the outbox)."""
        return self.number is None or (
            self.generation is not None and self.generation.acts_on(now_ms)
        )

    def install(self, bot: commands.AutoShardedBot) -> None:
        """Put the gate in front of the parsers of the events that start something."""
        self.shard_count = int(bot.shard_count or 1)
        if self.number is not None:
            internals.wrap_parsers(bot, ACTED_EVENTS, self._gated)

    def _gated(self, event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def handle(data: Any) -> None:
            created = self._note(data)
            if created is None:
                parse(data)
            elif self._held:  # keep the order: behind what is held already
                self._hold(event, parse, data, created)
            else:
                self._offer(event, parse, data, created)

        return handle

    def _note(self, data: Any) -> int | None:
        """The event's creation time (None without a snowflake id), noted for its shard."""
        raw = data.get("id") if isinstance(data, dict) else None
        if raw is None:
            return None
        created = snowflake_ms(int(raw))
        guild = data.get("guild_id")
        shard = shard_for_guild(int(guild), self.shard_count) if guild is not None else 0
        self.newest[shard] = max(self.newest.get(shard, 0), created)
        return created

    def _offer(self, event: str, parse: Callable[[Any], None], data: Any, created: int) -> None:
        decision = self.decide(created)
        if decision is Decision.ACT:
            parse(data)
        elif decision is Decision.WAIT:
            self._hold(event, parse, data, created)
        else:
            metrics.GENERATION_SKIPPED.labels(event).inc()

    def _hold(self, event: str, parse: Callable[[Any], None], data: Any, created: int) -> None:
        """Keep the event until the next read of the record; then it is offered again."""
        if len(self._held) >= MAX_HELD:
            self._held.popleft()
            log.warning("generation record unread for long: dropped the oldest held event")
        self._held.append(lambda: self._offer(event, parse, data, created))
