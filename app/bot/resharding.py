"""Resharding in the running pods: a new shard generation beside the active one, then a switch.

The process's first client (the anchor) runs the generation that was active when the pod
started. Four times a second the `Resharder` reads the cluster's generation record
(app/coord/generations.py) and, in this pod:

- starts a client for a generation being prepared: a second AutoShardedBot in the same process,
  on the anchor's database and Redis, whose shards are assigned over the live pods like the
  active generation's (its own leases, sessions and handover slot), identify through the shared
  identify queue and load their guilds, and act on nothing (app/bot/acting.py);
- reports which of that generation's shards are READY here; when every shard of it is READY
  somewhere, one compare-and-set schedules the switch SWITCH_LEAD_MS ahead: the moment T
  that splits every event between the two generations;
- after T plus RESHARD_DRAIN_S ends the old generation's sessions for good (close code 1000)
  and closes its client (the anchor stays, empty, holding the services);
- abandons a generation that cannot get READY: a fatal close (4011, 4010), the session-start
  budget, a preparation longer than RESHARD_PREPARE_TIMEOUT_S. Its sessions end; the active
  generation never stopped.

Optionally (RESHARD_AUTO) pod 0 starts a generation itself when its largest shard passes
RESHARD_AT of Discord's 2,500 guilds, or Discord recommends more shards than run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from app.bot import discord_internals as internals
from app.bot.fatal import Fatal, classify
from app.bot.reshard_command import budget_refusal
from app.coord.generations import (
    REFRESH_EVERY,
    SWITCH_LEAD_MS,
    Generation,
    GenerationStore,
    Record,
    Refused,
    State,
    rounded_up,
    wall_ms,
)
from app.coord.redis_link import RedisLink, RedisUnavailable, stop_tasks
from app.ops import metrics
from app.ops.logs import Throttle, log_context

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: A shard counts as READY for the switch while its owner said so within this many ms.
READY_FRESH_MS = 3_000
#: Discord refuses a shard with more guilds than this (close 4011).
GUILDS_PER_SHARD = 2_500
#: Every this many ticks (5 s) a pod publishes its guild counts and looks for a wanted count.
WANT_EVERY = 20
#: The old generation ends a session once it received an event created this long after the
#: switch, or once the session was quiet for QUIET_S; after DRAIN_MAX_S in any case.
BARRIER_PAST_MS = 1_000
QUIET_S = 2.0
DRAIN_MAX_S = 30.0
#: Seconds between two reads of Discord's recommended shard count (RESHARD_AUTO).
RECOMMENDATION_EVERY = 300.0
#: An automatic reshard to a count abandoned less than this long ago (ms) is not tried again.
RETRY_ABANDONED_MS = 3_600_000


def ready_key(number: int) -> str:
    """The sorted set of a generation's READY shards (score: when its owner last said so)."""
    return f"gen{number}:ready"


def guilds_key(number: int) -> str:
    """The hash of a generation's guild count per shard, as its owners last counted."""
    return f"gen{number}:guilds"


def wanted_by_growth(
    current: int, largest: int, total: int, recommended: int, at: float, max_concurrency: int
) -> int | None:
    """RESHARD_AUTO: the shard count to move to, or None while the current one will do.

    When the largest shard passes `at` of Discord's 2,500 guilds, or Discord recommends more
    shards than run, the new count gives each shard half that threshold (1,000 guilds at the
    default 0.8, Discord's own ratio) or Discord's recommendation, whichever is more, rounded
    up to a multiple of max_concurrency.
    """
    threshold = at * GUILDS_PER_SHARD
    if largest < threshold and recommended <= current:
        return None
    by_size = math.ceil(total / max(1.0, threshold / 2))
    target = rounded_up(max(recommended, by_size), max_concurrency)
    return target if target > current else None


class Resharder:
    """This pod's clients of the live shard generations, kept in step with the record."""

    def __init__(self, anchor: GuildBot, store: GenerationStore, record: Record, read_at: int):
        self.anchor = anchor
        self.store = store
        self.record = record
        self._read_at = read_at
        settings = anchor.settings
        self.drain_ms = int(settings.reshard_drain_s * 1000)
        self.prepare_timeout_ms = int(settings.reshard_prepare_timeout_s * 1000)
        #: Generation number -> this process's client of it (the anchor's included).
        self.clients: dict[int, GuildBot] = {}
        self._work: dict[int, asyncio.Task[None]] = {}
        self._acting: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._ticks = 0
        self._recommended: tuple[float, int] | None = None  # (when read, shards)
        self._refusals: dict[str, Throttle] = {}

    @classmethod
    async def open(cls, anchor: GuildBot, link: RedisLink) -> Resharder:
        """Read the record (waiting while Redis is away); point the anchor at its active generation.

        A pod started after a reshard runs that generation's shard count, not SHARD_COUNT's.
        """
        store = GenerationStore(link)
        delay = 0.1
        while True:
            read_at = wall_ms()
            try:
                stored = await store.read()
                break
            except RedisUnavailable:
                log.info("waiting for redis to read the shard generations")
                await asyncio.sleep(delay)  # backoff while Redis is away
                delay = min(delay * 2, 2.0)
        record = stored or Record.first(int(anchor.shard_count or 1))
        active = record.active()
        configured = anchor.settings.shard_count
        if isinstance(configured, int) and configured != active.shard_count:
            log.warning(
                "SHARD_COUNT=%d, but %s: running %d shards (`python -m app reshard --to %d` "
                "changes the count)",
                configured,
                active.describe(),
                active.shard_count,
                configured,
            )
        anchor.generation = active
        anchor.shard_count = active.shard_count
        return cls(anchor, store, record, read_at)

    def adopt(self, client: GuildBot) -> None:
        """A client of this process is set up: give it the record; the anchor starts the loop."""
        assert client.generation is not None
        self.clients[client.generation.number] = client
        client.gate.update(self.record, self._read_at)
        if client is self.anchor and self._task is None:
            self._task = asyncio.create_task(self._run(), name="resharder")

    def acting_client(self) -> GuildBot:
        """The client of the active generation here (the anchor until it has another)."""
        client = self.clients.get(self.record.active().number)
        return client if client is not None and not client.retired else self.anchor

    def failed(self, client: GuildBot, fatal: Fatal) -> None:
        """A client beside the anchor met a fatal cause.

        Its generation is abandoned if it was still preparing; else the process stops.
        """
        assert client.generation is not None
        gen = self.record.get(client.generation.number)
        if gen is None or gen.state is not State.PREPARING or gen.acts_from is not None:
            self.anchor.fail(fatal)
            return
        self._spawn(gen.number, self._abandon(gen.number, fatal.line))

    async def stop(self) -> None:
        """The process stops: no more changes; every other client hands its shards over."""
        await stop_tasks(self._task, *self._work.values())
        others = [c for c in self.clients.values() if c is not self.anchor and not c.retired]
        await asyncio.gather(*(c.close() for c in others), return_exceptions=True)

    # -- the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except RedisUnavailable:
                pass  # the gates hold what they cannot decide until the record is read
            except Exception:
                log.exception("resharding tick failed")
            await asyncio.sleep(REFRESH_EVERY)

    async def tick(self) -> None:
        """Read the record; keep every client's gate, and this pod's clients, in step."""
        read_at = wall_ms()
        stored = await self.store.read()
        if stored is None and self.record.fence > 0:
            # Redis lost its data: without the record every pod would fall back to generation 0
            # and end the sessions of the generation that serves. Put back what we last read.
            if await self.store.restore(self.record):
                log.warning(
                    "the shard generation record was lost; restored fence %d", self.record.fence
                )
            stored = await self.store.read()
        record = stored or Record.first(self.record.active().shard_count)
        self.record = record
        for client in self.clients.values():
            client.gate.update(record, read_at)
        self._publish(record, read_at)
        self._follow(record, read_at)
        await self._prepare(record)
        self._ticks += 1
        if self._ticks % WANT_EVERY == 0:
            await self._count_guilds(record)
            await self._start_wanted(record)
        if record.settle(read_at, self.drain_ms) is not None:
            await self._change(lambda rec, now: rec.settle(now, self.drain_ms))

    def _publish(self, record: Record, now: int) -> None:
        metrics.GENERATION_ACTIVE.set(record.active().number)
        for gen in record.live():
            metrics.GENERATION_SHARDS.labels(str(gen.number), gen.state.value).set(gen.shard_count)
        for number, client in self.clients.items():
            if number not in self._acting and client.gate.acting_now(now):
                self._acting.add(number)
                client.dispatch("generation_acting", number)  # the outbox looks at its guilds

    def _follow(self, record: Record, now: int) -> None:
        """Start clients of new generations, retire those of finished ones."""
        for gen in record.live():
            known = gen.number in self.clients or gen.number in self._work
            if not known and gen.state is State.PREPARING:
                self._spawn(gen.number, self._start(gen))
        for number, client in list(self.clients.items()):
            over = _over(record.get(number), now, self.drain_ms)
            if over and not client.retired and number not in self._work:
                self._spawn(number, self._retire(number, client))

    def _spawn(self, number: int, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"generation-{number}")
        self._work[number] = task
        task.add_done_callback(lambda _t: self._work.pop(number, None))

    async def _start(self, gen: Generation) -> None:
        log.info("%s: starting its shards here", gen.describe())
        client = type(self.anchor)(self.anchor.settings, anchor=self.anchor, generation=gen)
        with log_context(generation=gen.number):  # its tasks' log lines say which generation
            try:
                await client.login(self.anchor.http.token or "")
            except Exception as error:
                log.exception("generation %d: could not start its client", gen.number)
                await client.close()
                await self._abandon(gen.number, f"a pod could not start its client: {error!r}")
                return
            client.gateway_task = asyncio.create_task(
                client.connect(reconnect=True), name=f"gateway-gen{gen.number}"
            )
            client.gateway_task.add_done_callback(lambda task: self._gateway_ended(client, task))

    def _gateway_ended(self, client: GuildBot, task: asyncio.Task[None]) -> None:
        """A client's gateway stopped by an error (a close code like 4011): as `failed`."""
        if task.cancelled() or task.exception() is None or client.retired:
            return
        error = task.exception()
        assert error is not None
        self.failed(client, classify(error, client.shard_count))

    async def _retire(self, number: int, client: GuildBot) -> None:
        gen = self.record.get(number)
        if gen is not None and gen.acts_until is not None:
            await received_through(client, gen.acts_until)
        log.info("%s: ending its sessions here", gen.describe() if gen else f"generation {number}")
        await client.retire()
        if client is not self.anchor:
            self.clients.pop(number, None)

    async def _prepare(self, record: Record) -> None:
        """Report this pod's READY shards of the generation being prepared.

        Once all its shards are READY somewhere, switch to it; abandon it when it takes too long.
        """
        gen = record.in_progress()
        if gen is None or gen.acts_from is not None:
            return
        now = await self.store.now_ms()
        client = self.clients.get(gen.number)
        ready: set[int] = set()
        if client is not None and client.keeper is not None:
            ready = client.ready_shards & set(client.keeper.leases.held())
        key = ready_key(gen.number)

        async def report(r: Redis) -> int:
            pipe = r.pipeline(transaction=False)
            if ready:
                pipe.zadd(key, {str(s): now for s in ready})
            pipe.pexpire(key, 60_000)
            pipe.zcount(key, now - READY_FRESH_MS, "+inf")
            return int((await pipe.execute())[-1])

        ready_everywhere = await self.store.link.run(report)
        if ready_everywhere >= gen.shard_count:
            switched = await self._change(
                lambda rec, at: rec.switch(gen.number, at + SWITCH_LEAD_MS)
            )
            new = switched.get(gen.number) if switched is not None else None
            if new is not None and new.acts_from is not None:
                log.info(
                    "generation %d: every shard READY; switching at %d (in %d ms)",
                    gen.number,
                    new.acts_from,
                    new.acts_from - now,
                )
        elif now - gen.started > self.prepare_timeout_ms:
            reason = (
                f"{ready_everywhere} of {gen.shard_count} shards READY after "
                f"RESHARD_PREPARE_TIMEOUT_S={self.prepare_timeout_ms // 1000}"
            )
            await self._abandon(gen.number, reason)

    # -- a new count wanted: SHARD_COUNT_FILE, or RESHARD_AUTO --------------------------------
    async def _count_guilds(self, record: Record) -> None:
        """Publish how many guilds each shard of the active generation holds here."""
        client = self.acting_client()
        gen = record.active()
        if client.generation is None or client.generation.number != gen.number:
            return
        counts = Counter(g.shard_id for g in client.guilds)
        held = set(client.keeper.leases.held()) if client.keeper is not None else set()
        mapping: dict[Any, int] = {str(s): counts.get(s, 0) for s in held & client.ready_shards}
        if mapping:
            key = guilds_key(gen.number)

            async def publish(r: Redis) -> None:
                pipe = r.pipeline(transaction=False)
                pipe.hset(key, mapping=mapping)
                pipe.pexpire(key, 600_000)
                await pipe.execute()

            await self.store.link.run(publish)
        largest = max(counts.values(), default=0)
        at = self.anchor.settings.reshard_at * GUILDS_PER_SHARD
        metrics.RESHARD_RECOMMENDED.set(1 if largest >= at else 0)

    async def _start_wanted(self, record: Record) -> None:
        """Start a generation of the count the file or the growth asks for, within budget."""
        if record.in_progress() is not None or len(record.live()) > 1:
            return
        wanted = self._from_file(record)
        if wanted is None and self.anchor.settings.reshard_auto:
            wanted = await self._from_growth(record)
        if wanted is None:
            return
        count, reason, since = wanted
        tried = [
            g
            for g in record.generations
            if g.shard_count == count and g.state is State.ABANDONED and g.started >= since
        ]
        if tried:
            self._refuse(
                f"{count} shards were abandoned since it was asked for ({tried[-1].reason})"
            )
            return
        refusal = await self._budget_refusal(count)
        if refusal is not None:
            self._refuse(refusal)
            return
        started = await self._change(lambda rec, now: rec.start(count, now, reason))
        if started is not None:
            log.info("reshard to %d shards started: %s", count, reason)

    def _from_file(self, record: Record) -> tuple[int, str, int] | None:
        """(count, reason, since when it is wanted) from SHARD_COUNT_FILE, if it differs."""
        path = self.anchor.settings.shard_count_file
        if path is None:
            return None
        try:
            text = path.read_text().strip()
            since = int(path.stat().st_mtime * 1000)
        except OSError as error:
            self._refuse(f"SHARD_COUNT_FILE {path} cannot be read: {error}")
            return None
        if not text:
            return None  # an empty file asks for nothing
        if not text.isdigit() or not 1 <= int(text) <= 100_000:
            self._refuse(f"SHARD_COUNT_FILE {path} holds {text[:20]!r}, not a shard count")
            return None
        count = int(text)
        active = record.active()
        if count == active.shard_count or since <= active.started:
            return None  # met, or older than the latest reshard (the newest request wins)
        return count, f"SHARD_COUNT_FILE asks for {count}", since

    async def _from_growth(self, record: Record) -> tuple[int, str, int] | None:
        """(count, reason, since) when the guilds outgrew the active generation (RESHARD_AUTO)."""
        gen = record.active()
        raw = await self.store.link.run(lambda r: r.hvals(guilds_key(gen.number)))
        counts = [int(v) for v in raw]
        if len(counts) < gen.shard_count:
            return None  # not every shard counted yet: the total would be short
        recommended = await self._discord_recommends()
        keeper = self.anchor.keeper
        concurrency = keeper.max_concurrency if keeper is not None else 1
        target = wanted_by_growth(
            gen.shard_count,
            max(counts, default=0),
            sum(counts),
            recommended,
            self.anchor.settings.reshard_at,
            concurrency,
        )
        if target is None:
            return None
        reason = (
            f"automatic: largest shard {max(counts, default=0)} guilds, {sum(counts)} in all, "
            f"Discord recommends {recommended}"
        )
        return target, reason, wall_ms() - RETRY_ABANDONED_MS

    async def _discord_recommends(self) -> int:
        """Discord's recommended shard count, read at most every RECOMMENDATION_EVERY s."""
        now = time.monotonic()
        if self._recommended is None or now - self._recommended[0] > RECOMMENDATION_EVERY:
            shards, _, _ = await self.anchor.http.get_bot_gateway()
            self._recommended = (now, int(shards))
        return self._recommended[1]

    async def _budget_refusal(self, count: int) -> str | None:
        keeper = self.anchor.keeper
        if keeper is None:
            return "no shard keeper"
        await keeper.read_budget()
        if keeper.remaining is None:
            return "the session-start budget could not be read"
        return budget_refusal(
            count,
            keeper.remaining,
            self.anchor.settings.identify_min_remaining,
            keeper.max_concurrency,
            max(0.0, keeper.reset_at - time.monotonic()),
        )

    def _refuse(self, why: str) -> None:
        """Say why a wanted count is not started: once, then every five minutes."""
        if self._refusals.setdefault(why, Throttle(300.0)).due() is not None:
            log.error("not resharding: %s", why)

    async def _abandon(self, number: int, reason: str) -> None:
        done = await self._change(lambda rec, _now: rec.abandon(number, reason))
        if done is not None:
            log.error("generation %d abandoned: %s", number, reason)
            metrics.RESHARDS.labels("abandoned").inc()

    async def _change(self, change: Callable[[Record, int], Record | None]) -> Record | None:
        """Apply a change under the fence; None when refused (another pod was first)."""
        try:
            updated = await self.store.change(self.record.active().shard_count, change)
        except Refused as refused:
            log.debug("generation change refused: %s", refused)
            return None
        if updated is not None:
            self.record = updated
        return updated


async def received_through(client: GuildBot, moment_ms: int) -> None:
    """Wait until each of `client`'s sessions received every event created before `moment_ms`.

    `moment_ms` is the switch: ending a session sooner could lose an event the other generation
    skips. A session has once it received an event created BARRIER_PAST_MS after the moment (a
    session delivers in order), or once it was quiet for QUIET_S; DRAIN_MAX_S at most.
    """
    deadline = time.monotonic() + DRAIN_MAX_S
    last: dict[int, tuple[int | None, float]] = {}
    while time.monotonic() < deadline:
        waiting = []
        for shard_id, shard in internals.shards_of(client).items():
            if client.gate.newest.get(shard_id, 0) >= moment_ms + BARRIER_PAST_MS:
                continue
            _, sequence, _ = internals.session_of(shard)
            now = time.monotonic()
            seen = last.get(shard_id)
            if seen is None or seen[0] != sequence:
                last[shard_id] = (sequence, now)
                waiting.append(shard_id)
            elif now - seen[1] < QUIET_S:
                waiting.append(shard_id)
        if not waiting:
            return
        await asyncio.sleep(0.1)  # sessions deliver on their own; look again shortly
    log.warning("ending sessions that may not have delivered everything before the switch")


def _over(gen: Generation | None, now: int, drain_ms: int) -> bool:
    """Whether a generation's sessions should end.

    Gone from the record, retired, abandoned, or switched away from `drain_ms` ago.
    """
    if gen is None or gen.state in (State.RETIRED, State.ABANDONED):
        return True
    return gen.acts_until is not None and now >= gen.acts_until + drain_ms
