"""Shard ownership for one bot process: leases, the identify queue, the session budget, and
session handover, wired into discord.py's AutoShardedBot hooks.

- Before a shard connects, the process takes the shard's lease (waiting while another process
  holds it). A lost lease stops the shard at once; it reconnects when the lease is back.
- Before each IDENTIFY the shard waits for its bucket in the identify queue and holds it until
  READY (released in `shard_ready_seen`) or until the next attempt.
- The daily session-start budget from /gateway/bot is checked before every identify; below
  IDENTIFY_MIN_REMAINING the process waits for the reset instead of identifying.
- Each shard's session (id, sequence, resume URL) is saved every second, and when the process
  stops its shards are parked (closed resumably) and saved before the leases are released:
  the next owner RESUMEs instead of identifying, and Discord replays what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING

from discord.gateway import DiscordWebSocket

from app.bot import gateway_access
from app.config import Settings
from app.coord import Coordination
from app.coord.identify import LocalIdentifyQueue, RedisIdentifyQueue, Ticket
from app.coord.leases import LocalLeases, RedisShardLeases
from app.coord.sessions import LocalSessionStore, RedisSessionStore, SavedSession
from app.ops import metrics

if TYPE_CHECKING:
    from discord.ext import commands

log = logging.getLogger(__name__)

SAVE_EVERY = 1.0


def owner_name() -> str:
    """This process's name in leases: pod (host) name, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ShardKeeper:
    """Everything this process does to own its shards safely."""

    def __init__(self, bot: commands.AutoShardedBot, settings: Settings, coord: Coordination):
        self.bot = bot
        self.settings = settings
        self.owner = owner_name()
        link = coord.redis
        if link is not None:
            self.queue: LocalIdentifyQueue | RedisIdentifyQueue = RedisIdentifyQueue(
                link, settings.identify_window_s
            )
            self.leases: LocalLeases | RedisShardLeases = RedisShardLeases(
                link, self.owner, settings.lease_ttl_s
            )
            self.sessions: LocalSessionStore | RedisSessionStore = RedisSessionStore(link)
        else:
            self.queue = LocalIdentifyQueue(settings.identify_window_s)
            self.leases = LocalLeases()
            self.sessions = LocalSessionStore()
        self.max_concurrency = 1
        self.remaining: int | None = None
        self.reset_at = 0.0
        self._tickets: dict[int, Ticket] = {}
        self._last_seq: dict[int, int] = {}
        self._saver: asyncio.Task[None] | None = None
        self._reclaiming: dict[int, asyncio.Task[None]] = {}
        self._handed_over: set[int] = set()

    async def start(self) -> None:
        """Read the session-start budget and start renewing leases and saving sessions."""
        try:
            _, _, limits = await self.bot.http.get_bot_gateway()
        except Exception as error:  # the budget check is advisory; never block start-up on it
            log.warning("could not read the session start limit: %s", error)
        else:
            self.max_concurrency = int(limits.get("max_concurrency", 1))
            self._set_budget(int(limits["remaining"]), float(limits["reset_after"]) / 1000)
        await self.leases.start(self._lease_lost)
        self._saver = asyncio.create_task(self._save_forever(), name="shard-session-saver")

    def _set_budget(self, remaining: int, reset_after: float) -> None:
        self.remaining = remaining
        self.reset_at = time.monotonic() + reset_after
        metrics.SESSION_STARTS_REMAINING.set(remaining)

    # -- launch, identify, ready -----------------------------------------------------------
    async def launch(self, shard_id: int, initial: bool) -> bool:
        """Take the lease, then RESUME a saved session if there is one.

        Returns False when the caller should launch the shard normally (IDENTIFY).
        """
        await self.leases.acquire(shard_id)
        metrics.OWNED_SHARDS.set(len(self.leases.held()))
        saved = await self.sessions.load(shard_id)
        if saved is None or not saved.session_id:
            metrics.HANDOVERS.labels("identify").inc()
            return False
        log.info(
            "shard %d: resuming session %s at seq %d", shard_id, saved.session_id, saved.sequence
        )
        try:
            await gateway_access.resume_shard(
                self.bot,
                shard_id,
                saved.session_id,
                saved.sequence,
                saved.resume_url,
                initial=initial,
            )
        except Exception as error:
            log.warning("shard %d: resume failed (%s); identifying instead", shard_id, error)
            await self.sessions.forget(shard_id)
            metrics.HANDOVERS.labels("identify").inc()
            return False
        metrics.HANDOVERS.labels("resume").inc()
        self._handed_over.add(shard_id)
        return True

    def take_handover(self, shard_id: int) -> bool:
        """True once after a shard was resumed from a saved session (its cache is empty)."""
        if shard_id in self._handed_over:
            self._handed_over.discard(shard_id)
            return True
        return False

    async def before_identify(self, shard_id: int) -> None:
        """Hold the lease and the shard's identify bucket, within the session budget."""
        if shard_id not in self.leases.held():
            await self.leases.acquire(shard_id)
        previous = self._tickets.pop(shard_id, None)
        if previous is not None:  # the last attempt failed before READY
            metrics.IDENTIFIES.labels(str(shard_id), "rejected").inc()
            await self.queue.release(previous)
        await self._within_budget(shard_id)
        self._tickets[shard_id] = await self.queue.acquire(shard_id, self.max_concurrency)
        await self.sessions.forget(shard_id)
        if self.remaining is not None:
            self._set_budget(self.remaining - 1, max(0.0, self.reset_at - time.monotonic()))

    async def _within_budget(self, shard_id: int) -> None:
        floor = self.settings.identify_min_remaining
        while self.remaining is not None and self.remaining < floor:
            wait = max(1.0, self.reset_at - time.monotonic())
            log.error(
                "refusing to identify shard %d: %d session starts left today, below the safety"
                " threshold of %d (IDENTIFY_MIN_REMAINING); the budget resets in %.0f s",
                shard_id,
                self.remaining,
                floor,
                wait,
            )
            await asyncio.sleep(min(wait, 300.0))
            try:
                _, _, limits = await self.bot.http.get_bot_gateway()
                self._set_budget(int(limits["remaining"]), float(limits["reset_after"]) / 1000)
            except Exception as error:
                log.warning("could not re-read the session start limit: %s", error)

    async def shard_ready_seen(self, shard_id: int) -> None:
        """READY arrived: free the identify bucket (it reopens after the window)."""
        ticket = self._tickets.pop(shard_id, None)
        if ticket is not None:
            metrics.IDENTIFIES.labels(str(shard_id), "ok").inc()
            await self.queue.release(ticket)

    # -- sessions --------------------------------------------------------------------------
    async def save_sessions(self) -> None:
        """Save every connected shard's session under its lease; count its new events."""
        shards = gateway_access.shards_of(self.bot)
        for shard_id, lease in self.leases.held().items():
            shard = shards.get(shard_id)
            if shard is None:
                continue
            session_id, sequence, url = gateway_access.session_of(shard)
            if session_id and sequence is not None and url:
                last = self._last_seq.get(shard_id, 0)
                metrics.EVENTS.labels(str(shard_id)).inc(max(0, sequence - last))
                self._last_seq[shard_id] = sequence
                await self.sessions.save(
                    shard_id, SavedSession(session_id, sequence, url, lease.fence)
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
        shard = gateway_access.shards_of(self.bot).get(shard_id)
        if shard is not None:
            await gateway_access.park_shard(shard)
            self.bot.dispatch("shard_disconnect", shard_id)
        metrics.SHARD_UP.labels(str(shard_id)).set(0)
        metrics.OWNED_SHARDS.set(len(self.leases.held()))
        live = getattr(self.bot, "rebalancer", None) is not None  # it retakes assigned shards
        if not live and shard_id not in self._reclaiming and not self.bot.is_closed():
            self._reclaiming[shard_id] = asyncio.create_task(self._reclaim(shard_id))

    async def _reclaim(self, shard_id: int) -> None:
        try:
            await self.leases.acquire(shard_id)
            if not self.bot.is_closed():
                log.info("shard %d: lease regained, reconnecting", shard_id)
                await self.bot.launch_shard(DiscordWebSocket.DEFAULT_GATEWAY, shard_id)
        finally:
            self._reclaiming.pop(shard_id, None)

    async def release(self, shard_id: int) -> None:
        """Give one shard up: park it (its session stays resumable), save it, release the lease."""
        shard = gateway_access.shards_of(self.bot).pop(shard_id, None)
        if shard is not None:
            await gateway_access.park_shard(shard)
            session_id, sequence, url = gateway_access.session_of(shard)
            lease = self.leases.held().get(shard_id)
            if session_id and sequence is not None and url and lease is not None:
                await self.sessions.save(
                    shard_id, SavedSession(session_id, sequence, url, lease.fence)
                )
        await self.leases.release(shard_id)
        ticket = self._tickets.pop(shard_id, None)
        if ticket is not None:  # released while identifying: free the bucket for the others
            await self.queue.release(ticket)
        metrics.OWNED_SHARDS.set(len(self.leases.held()))
        metrics.forget_shard(shard_id)

    async def hand_over(self) -> None:
        """On shutdown: stop renewing, then give every shard up (sessions saved)."""
        if self._saver is not None:
            self._saver.cancel()
        for task in self._reclaiming.values():
            task.cancel()
        for shard_id in list(self.leases.held()):
            await self.release(shard_id)
        await self.leases.close()
        log.info("shards parked and leases released")
