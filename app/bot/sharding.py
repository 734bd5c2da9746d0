"""Shard ownership for one bot process, wired into discord.py's AutoShardedBot hooks.

Leases, the identify queue, the session budget, and session handover:

- Before a shard connects, the process takes the shard's lease (waiting while another process
  holds it). A lost lease stops the shard at once; it reconnects when the lease is back.
- A shard with a saved session (another process ran it) gets its guilds the way HANDOVER_MODE
  says (app/bot/handover.py: a snapshot the previous owner left, on first use, or over REST) and
  is then RESUMEd, so that the events Discord replays find their guilds. Otherwise (or with
  HANDOVER_MODE=identify) it waits for its bucket in the identify queue (before the websocket
  is even opened) and holds it until READY; a rejected identify (op 9) releases the bucket and
  queues again, a few times at most.
- The daily session-start budget from /gateway/bot is checked before every identify; below
  IDENTIFY_MIN_REMAINING the process stops (app/bot/fatal.py) rather than risk the token.
- Each shard's session (id, sequence, resume URL) is saved every second, and when the process
  stops its shards are parked (closed resumably), their guild state handed on, and saved before
  the leases are released:
  the next owner RESUMEs instead of identifying, and Discord replays what it missed.
- Every wait here ends when the process stops (`stop_starting`), so SIGTERM in any phase of
  start-up (app/bot/startup.py) is obeyed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import yarl

from app.bot import discord_internals as internals
from app.bot import fatal
from app.bot.handled_sequence import HandledSequence
from app.bot.handover import Handover
from app.bot.rest_gate import low_priority
from app.bot.startup import Phase, ShardPhases
from app.config import Settings
from app.coord import Coordination
from app.coord.identify import Ticket
from app.coord.sessions import SavedSession
from app.ops import metrics

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)
T = TypeVar("T")

SAVE_EVERY = 1.0
#: Identifies of one shard answered op 9 (or failed before READY) in a row before the process
#: stops: more means another process spends the bucket outside the identify queue.
MAX_REJECTED = 5
#: Attempts to open a shard's websocket (backoff 2, 4, 8, 16, 30 s between them).
CONNECT_ATTEMPTS = 6


class ShardKeeper:
    """Everything this process does to own its shards safely."""

    def __init__(self, bot: GuildBot, settings: Settings, coord: Coordination) -> None:
        self.bot = bot
        self.settings = settings
        self.queue = coord.identify
        self.leases = coord.leases
        self.sessions = coord.sessions
        self.handover = Handover(bot, settings.handover_mode, coord.snapshots)
        self.handled = HandledSequence(bot)
        self.phases = ShardPhases()
        self.max_concurrency = 1
        self.remaining: int | None = None
        self.reset_at = 0.0
        self._tickets: dict[int, Ticket] = {}
        self._unsent: set[int] = set()  # bucket held by our own launch, IDENTIFY not sent yet
        self._rejected: dict[int, int] = {}
        self._releasing: set[asyncio.Task[None]] = set()
        self._last_seq: dict[int, int] = {}
        self._saver: asyncio.Task[None] | None = None
        self._reclaiming: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Read the session-start budget and start renewing leases and saving sessions."""
        await self.read_budget()
        self.handled.install()
        await self.leases.start(self._lease_lost)
        self._saver = asyncio.create_task(self._save_forever(), name="shard-session-saver")

    async def read_budget(self) -> None:
        """Read today's session starts left and max_concurrency from /gateway/bot."""
        try:
            _, _, limits = await self.bot.http.get_bot_gateway()
        except Exception as error:  # the budget check is advisory; never block start-up on it
            log.warning("could not read the session start limit: %s", fatal.describe(error))
        else:
            self.max_concurrency = int(limits.get("max_concurrency", 1))
            self._set_budget(int(limits["remaining"]), float(limits["reset_after"]) / 1000)

    def _set_budget(self, remaining: int, reset_after: float) -> None:
        self.remaining = remaining
        self.reset_at = time.monotonic() + reset_after
        metrics.SESSION_STARTS_REMAINING.set(remaining)

    def stop_starting(self) -> None:
        """The process is stopping: every wait for a lease or a bucket ends now."""
        self._stopping.set()

    async def _unless_stopping(self, work: Awaitable[T]) -> T:
        """`work`, abandoned (CancelledError) when the process starts stopping meanwhile.

        For the waits that run inside discord.py's own reconnect task, which nothing else
        cancels; discord.py ends that reconnect quietly on CancelledError.
        """
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise asyncio.CancelledError
        return task.result()

    # -- launch, identify, ready -----------------------------------------------------------
    async def launch(self, shard_id: int, initial: bool) -> None:
        """Bring one shard up here.

        Take its lease, then RESUME a saved session (guilds loaded first) or IDENTIFY through
        the queue.
        """
        await self._take_lease(shard_id)
        if not await self._resume(shard_id, initial):
            await self._identify(shard_id, initial)

    async def _take_lease(self, shard_id: int) -> None:
        self.phases.enter(shard_id, Phase.WAITING_LEASE)
        lease = await self.leases.acquire(shard_id)
        log.info("shard %d: lease taken (fence %d)", shard_id, lease.fence)
        metrics.OWNED_SHARDS.set(len(self.leases.held()))

    async def _resume(self, shard_id: int, initial: bool) -> bool:
        """RESUME the shard's saved session, its guilds loaded first; False: identify instead."""
        started = time.monotonic()
        saved = await self.sessions.load(shard_id)
        if saved is None or not saved.session_id:
            return False
        if not self.handover.resumes:
            await self.sessions.forget(shard_id)
            return False
        self.phases.enter(shard_id, Phase.LOADING)
        with low_priority():  # REST hydration goes behind commands and moderation
            how = await self.handover.take(shard_id, saved)
        self.phases.enter(shard_id, Phase.RESUMING)
        log.info(
            "shard %d: resuming session %s at seq %d (guilds: %s)",
            shard_id,
            saved.session_id,
            saved.sequence,
            how,
        )
        try:
            await internals.connect_shard(
                self.bot,
                shard_id,
                yarl.URL(saved.resume_url),
                on_end=self.connection_ended,
                initial=initial,
                session=(saved.session_id, saved.sequence),
            )
        except internals.CONNECT_ERRORS as error:
            log.warning(
                "shard %d: resume failed (%s); identifying instead", shard_id, fatal.describe(error)
            )
            await self.sessions.forget(shard_id)
            return False
        metrics.HANDOVERS.labels("resume").inc()
        metrics.HANDOVER_DURATION.labels(self.handover.mode).observe(time.monotonic() - started)
        return True

    async def _identify(self, shard_id: int, initial: bool) -> None:
        """Wait for the bucket, then connect and IDENTIFY.

        A gateway that cannot be reached is retried a few times with backoff, then it is fatal.
        """
        gateway = internals.default_gateway()
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            await self._queue_for_identify(shard_id)
            try:
                await internals.connect_shard(
                    self.bot, shard_id, gateway, on_end=self.connection_ended, initial=initial
                )
            except internals.CONNECT_ERRORS as error:
                self._unsent.discard(shard_id)
                await self._free_bucket(shard_id)
                self._fatal_close(error)
                if attempt == CONNECT_ATTEMPTS:
                    url = str(gateway)
                    raise fatal.gateway_unreachable(shard_id, url, attempt, error) from None
                wait = min(2.0**attempt, 30.0)
                log.warning(
                    "shard %d: could not connect to the gateway (%s); retrying in %.0f s",
                    shard_id,
                    fatal.describe(error),
                    wait,
                )
                await asyncio.sleep(wait)  # backoff before the next attempt
            else:
                metrics.HANDOVERS.labels("identify").inc()
                return

    def _fatal_close(self, error: BaseException) -> None:
        """A close code no retry can fix, met while connecting: stop the process."""
        code = getattr(error, "code", None)
        if isinstance(code, int):
            found = fatal.closed_by_discord(code, getattr(error, "shard_id", None), None)
            if found is not None:
                raise fatal.FatalError(found) from None

    async def _queue_for_identify(self, shard_id: int) -> None:
        """Wait for the shard's identify bucket (within the budget) and hold it until READY."""
        self.phases.enter(shard_id, Phase.QUEUED)
        await self._within_budget(shard_id)
        self._tickets[shard_id] = await self.queue.acquire(shard_id, self.max_concurrency)
        self._unsent.add(shard_id)

    async def _free_bucket(self, shard_id: int) -> None:
        ticket = self._tickets.pop(shard_id, None)
        if ticket is not None:
            await self.queue.release(ticket)

    async def before_identify(self, shard_id: int) -> None:
        """Just before IDENTIFY is sent: hold the lease and the shard's bucket, within budget.

        Our own launch queued already; discord.py identifying again (op 9, or a session that
        ended) queues here, and an identify that got no READY counts as rejected.
        """
        if shard_id in self._unsent:
            self._unsent.discard(shard_id)
        else:
            await self._unless_stopping(self._queue_again(shard_id))
            self._unsent.discard(shard_id)
        try:  # again now: the shards that queued together all passed the check at once
            await self._within_budget(shard_id)
        except fatal.FatalError:
            await self._free_bucket(shard_id)
            raise
        self.phases.enter(shard_id, Phase.IDENTIFYING)
        await self.sessions.forget(shard_id)
        if self.remaining is not None:
            self._set_budget(self.remaining - 1, max(0.0, self.reset_at - time.monotonic()))

    async def _queue_again(self, shard_id: int) -> None:
        times = self._rejected.get(shard_id, 0)
        if times >= MAX_REJECTED:
            raise fatal.identify_rejected(shard_id, times)
        if shard_id not in self.leases.held():
            await self._take_lease(shard_id)
        await self._queue_for_identify(shard_id)

    def connection_ended(self, shard_id: int) -> None:
        """One of the shard's connections ended.

        If it had sent IDENTIFY and seen no READY, the identify was rejected (op 9) or failed:
        free the bucket now, for the shards queued behind it (discord.py handles one reconnect
        at a time, so waiting for this shard's own reconnect to free it could deadlock).
        """
        if shard_id in self._unsent or shard_id not in self._tickets:
            return
        ticket = self._tickets.pop(shard_id)
        metrics.IDENTIFIES.labels(str(shard_id), "rejected").inc()
        times = self._rejected[shard_id] = self._rejected.get(shard_id, 0) + 1
        log.warning(
            "shard %d: identify rejected (op 9) or failed before READY (%d in a row)",
            shard_id,
            times,
        )
        task = asyncio.create_task(self.queue.release(ticket), name=f"release-bucket-{shard_id}")
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _within_budget(self, shard_id: int) -> None:
        """Stop the process rather than identify below IDENTIFY_MIN_REMAINING.

        The count is re-read from /gateway/bot first: other pods spend it too, and it resets
        daily.
        """
        floor = self.settings.identify_min_remaining
        if self.remaining is None or self.remaining >= floor:
            return
        await self.read_budget()
        if self.remaining is not None and self.remaining < floor:
            resets_in = max(0.0, self.reset_at - time.monotonic())
            raise fatal.budget_exhausted(shard_id, self.remaining, floor, resets_in)

    async def shard_ready_seen(self, shard_id: int) -> None:
        """READY arrived: free the identify bucket (it reopens after the window)."""
        self._rejected.pop(shard_id, None)
        ticket = self._tickets.pop(shard_id, None)
        if ticket is not None:
            metrics.IDENTIFIES.labels(str(shard_id), "ok").inc()
            await self.queue.release(ticket)
            self.phases.enter(shard_id, Phase.LOADING)

    def shard_serving(self, shard_id: int) -> None:
        """The shard is READY with its guilds, or RESUMED."""
        self.phases.enter(shard_id, Phase.READY, quiet=True)

    # -- sessions --------------------------------------------------------------------------
    async def save_sessions(self) -> None:
        """Save every connected shard's session under its lease; count its new events.

        The sequence saved is the last one handled (app/bot/handled_sequence.py): a takeover
        after this process is killed replays every command it had not finished.
        """
        shards = internals.shards_of(self.bot)
        for shard_id, lease in self.leases.held().items():
            shard = shards.get(shard_id)
            if shard is None:
                continue
            session_id, sequence, url = internals.session_of(shard)
            if session_id and sequence is not None and url:
                last = self._last_seq.get(shard_id, 0)
                metrics.EVENTS.labels(str(shard_id)).inc(max(0, sequence - last))
                self._last_seq[shard_id] = sequence
                handled = self.handled.through(shard_id, session_id, sequence)
                await self.sessions.save(
                    shard_id, SavedSession(session_id, handled, url, lease.fence)
                )

    async def _save_forever(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY)
            try:
                await self.save_sessions()
            except Exception:
                log.exception("saving shard sessions failed")

    # -- losing and giving up shards -------------------------------------------------------
    async def _lease_lost(self, shard_id: int) -> None:
        """Another process may own the shard now: stop it here at once, then wait to reclaim."""
        shard = internals.shards_of(self.bot).get(shard_id)
        if shard is not None:
            await internals.park_shard(shard)
            self.bot.dispatch("shard_disconnect", shard_id)
        metrics.SHARD_UP.labels(str(shard_id)).set(0)
        metrics.OWNED_SHARDS.set(len(self.leases.held()))
        live = self.bot.rebalancer is not None  # it retakes the shards assigned to this pod
        if not live and shard_id not in self._reclaiming and not self._stopping.is_set():
            self._reclaiming[shard_id] = asyncio.create_task(self._reclaim(shard_id))

    async def _reclaim(self, shard_id: int) -> None:
        try:
            log.info("shard %d: reconnecting once its lease is back", shard_id)
            await self.bot.launch_shard(internals.default_gateway(), shard_id)
        except fatal.FatalError as error:
            self.bot.fail(error.fatal)
        finally:
            self._reclaiming.pop(shard_id, None)

    async def release(self, shard_id: int) -> None:
        """Give one shard up: park it (its session stays resumable), save it, release the lease.

        Its guilds are encoded for the next owner before the park, while it still serves.
        """
        if shard_id in internals.shards_of(self.bot):
            await self.handover.prepare(shard_id)
        shard = internals.shards_of(self.bot).pop(shard_id, None)
        if shard is not None:
            await internals.park_shard(shard)
            log.info("shard %d: parked", shard_id)  # unserved from here until its next owner
            session_id, sequence, url = internals.session_of(shard)
            lease = self.leases.held().get(shard_id)
            saved = None
            if session_id and sequence is not None and url and lease is not None:
                saved = SavedSession(session_id, sequence, url, lease.fence)
            await self.handover.leave(shard_id, saved)  # before the session, which names it
            if saved is not None:
                await self.sessions.save(shard_id, saved)
        await self.leases.release(shard_id)
        log.info("shard %d: parked and released", shard_id)
        self._unsent.discard(shard_id)
        await self._free_bucket(shard_id)  # released while identifying: free it for the others
        self._rejected.pop(shard_id, None)
        self.phases.forget(shard_id)
        metrics.OWNED_SHARDS.set(len(self.leases.held()))
        metrics.forget_shard(shard_id)

    async def hand_over(self) -> None:
        """On shutdown: stop saving and reclaiming, then give every shard up (sessions saved)."""
        await self._stop_keeping()
        for shard_id in list(self.leases.held()):
            await self.release(shard_id)
        await self.leases.close()
        log.info("shards parked and leases released")

    async def end_sessions(self) -> None:
        """The shard generation is over: close every session for good, forget it, release.

        Nothing resumes them (app/bot/resharding.py): the next generation runs its own.
        """
        await self._stop_keeping()
        for shard_id in list(self.leases.held()):
            shard = internals.shards_of(self.bot).pop(shard_id, None)
            if shard is not None:
                await shard.close()  # close code 1000: Discord ends the session
            await self.sessions.forget(shard_id)
            await self.leases.release(shard_id)
            await self._free_bucket(shard_id)
            internals.forget_guilds(self.bot, shard_id)
            self.phases.forget(shard_id)
            metrics.forget_shard(shard_id)  # the next generation's client sets its own
        await self.leases.close()
        log.info("sessions of this shard generation ended")

    async def _stop_keeping(self) -> None:
        """Stop saving sessions and reclaiming lost leases; every start-up wait ends."""
        self._stopping.set()
        if self._saver is not None:
            self._saver.cancel()
        reclaiming = list(self._reclaiming.values())
        for task in reclaiming:
            task.cancel()
        await asyncio.gather(*reclaiming, return_exceptions=True)
