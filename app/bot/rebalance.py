"""Live shard rebalancing: the number of pods is whatever Kubernetes runs.

Every pod heartbeats into the membership set and, twice a second, computes the same assignment
from the live members (app/coord/assignment.py). It gives up the shards it no longer owns and
takes the ones it newly owns, in the running process; shards that stay are never touched.

A shard changes hands through the cluster-wide handover slot, one shard at a time: the old owner
parks it (closed resumably), saves its session and releases its lease; the new owner takes the
lease, RESUMEs the session (Discord replays what was sent meanwhile, no identify is spent) and
frees the slot once the shard is back. Shards of a pod that vanished are reassigned only after
the grace period; their leases have expired by then, and their saved sessions are resumed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from app.bot.fatal import FatalError
from app.bot.startup import Phase
from app.coord.assignment import assign
from app.coord.membership import HandoverSlot, Membership
from app.coord.redis_link import RedisUnavailable, stop_tasks
from app.ops import metrics

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

TICK = 0.5
PICKUP_WAIT = 15.0
#: A shard in these phases has its IDENTIFY or RESUME out: releasing it, or cancelling its
#: launch, would throw that session away (an IDENTIFY spent for nothing, a session orphaned).
CONNECTING = frozenset({Phase.IDENTIFYING, Phase.LOADING, Phase.RESUMING})


class Rebalancer:
    """Keeps this pod's shards equal to its share of the live assignment."""

    def __init__(self, bot: GuildBot, membership: Membership, slot: HandoverSlot) -> None:
        assert bot.keeper is not None
        self.bot = bot
        self.keeper = bot.keeper
        self.shard_count = int(bot.shard_count or 1)
        self.membership = membership
        self.slot = slot
        self.mine: set[int] = set()
        self.settled = False
        self._taking: dict[int, asyncio.Task[None]] = {}
        self._members: list[str] = []
        self._changed_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Join the cluster and start the loop."""
        await self.membership.heartbeat()
        self._task = asyncio.create_task(self._run(), name="shard-rebalancer")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except RedisUnavailable:
                pass  # leases stop the shards if this lasts; nothing to decide meanwhile
            except Exception:
                log.exception("rebalance tick failed")
            await asyncio.sleep(TICK)

    async def tick(self) -> None:
        """One round: heartbeat, compute the assignment, release and take shards."""
        await self.membership.heartbeat()
        members = await self.membership.members()
        if self.membership.me not in members:
            members = sorted([*members, self.membership.me])
        if members != self._members:
            log.info("members: %s", ", ".join(members))
            self._members = members
            self._changed_at = time.monotonic()
            self.settled = False
            metrics.REBALANCES.inc()
        plan = assign(self.shard_count, members)
        self.mine = {s for s, owner in plan.items() if owner == self.membership.me}
        running = set(self.keeper.leases.held())
        for shard_id in set(self._taking) - self.mine:
            if self.keeper.phases.of(shard_id) not in CONNECTING:
                self._taking.pop(shard_id).cancel()  # nothing sent to Discord yet
        for shard_id in sorted(running - self.mine):
            if self.keeper.phases.of(shard_id) in CONNECTING:
                continue  # its IDENTIFY or RESUME is out: hand it over once it serves
            if await self.slot.begin(shard_id):
                log.info("shard %d moves to %s", shard_id, plan[shard_id])
                await self.bot.release_shard(shard_id)
            break  # one shard in flight at a time, cluster-wide
        for shard_id in sorted(self.mine - running - set(self._taking)):
            self._taking[shard_id] = asyncio.create_task(self._take(shard_id))
        done = self.mine <= self.bot.ready_shards and running <= self.mine and not self._taking
        if done and not self.settled:
            self.settled = True
            log.info(
                "converged: shards %s, %.2f s after the last membership change",
                sorted(self.mine),
                time.monotonic() - self._changed_at,
            )

    async def _take(self, shard_id: int) -> None:
        try:
            await self.bot.take_shard(shard_id)
        except asyncio.CancelledError:
            raise
        except FatalError as error:
            self.bot.fail(error.fatal)
        except Exception:
            log.exception("taking shard %d failed", shard_id)
        finally:
            self._taking.pop(shard_id, None)

    async def shard_running(self, shard_id: int) -> None:
        """A shard is READY or RESUMED here: free the handover slot if it was moving to us."""
        with contextlib.suppress(RedisUnavailable):  # else the slot's TTL frees it
            await self.slot.finish(shard_id)

    async def stop(self) -> None:
        """Stop taking and giving shards, staying a member (the pod's other generation runs)."""
        self._stopping = True
        await stop_tasks(self._task, *self._taking.values())

    async def leave(self) -> None:
        """On SIGTERM: leave the membership, then hand each shard over as soon as it is taken."""
        await self.stop()
        try:
            await self.membership.leave()
        except RedisUnavailable:
            return
        for shard_id in sorted(self.keeper.leases.held()):
            if await self._others_remain():
                await self._wait_for_slot()
                await self.slot.begin(shard_id)
            await self.bot.release_shard(shard_id)

    async def _others_remain(self) -> bool:
        """Whether any other pod is still a member (re-read: pods may be stopping together)."""
        try:
            return any(m != self.membership.me for m in await self.membership.members())
        except RedisUnavailable:
            return False

    async def _wait_for_slot(self) -> None:
        """Wait (polling Redis, bounded) until the previous shard was picked up."""
        deadline = time.monotonic() + PICKUP_WAIT
        while time.monotonic() < deadline:
            if not await self.slot.pending():
                return
            await asyncio.sleep(0.05)
