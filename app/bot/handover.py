"""How a shard's guild state goes from the process that releases it to the one that takes it.

A RESUME in a new process brings no GUILD_CREATE, so the new owner must get the shard's guilds
another way. HANDOVER_MODE picks it (measured in docs/benchmarks.md, "Shard handover at scale"):

- `snapshot` (the default): the releasing process writes the guilds it holds to the snapshot
  store under its lease's fence, stamped with the session and sequence it saves next; the new
  owner uses them only if its saved session is exactly that one (otherwise: as `eager`). No REST.
- `lazy`: RESUME at once; each guild is loaded on its first event (app/bot/lazy_guilds.py).
- `eager`: every guild over REST before RESUME (app/bot/hydration.py), three calls each.
- `identify`: the saved session is dropped and the shard IDENTIFYs through the queue (Discord
  sends every GUILD_CREATE; costs one of the day's session starts).

Whatever the mode, a resumed shard's guilds missing from the cache are loaded on first event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from typing import TYPE_CHECKING, Literal

from app.bot import discord_internals as internals
from app.bot.guild_payload import guild_payload
from app.bot.hydration import load_shard_guilds
from app.bot.lazy_guilds import LazyGuilds
from app.coord.sessions import SavedSession
from app.coord.snapshots import ShardSnapshot, SnapshotStore
from app.ops import metrics

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

Mode = Literal["snapshot", "lazy", "eager", "identify"]
#: Guilds written or rebuilt between two turns of the event loop.
BATCH = 50


class Handover:
    """This process's side of shard handovers, in one HANDOVER_MODE."""

    def __init__(self, bot: GuildBot, mode: Mode, snapshots: SnapshotStore) -> None:
        self.bot = bot
        self.mode = mode
        self.snapshots = snapshots
        self.lazy = LazyGuilds(bot)

    @property
    def resumes(self) -> bool:
        """Whether a saved session is resumed (every mode but `identify`)."""
        return self.mode != "identify"

    async def leave(self, shard_id: int, session: SavedSession | None) -> None:
        """The shard was parked and `session` is saved next: hand its guild state on."""
        await self.lazy.release(shard_id)
        if self.mode != "snapshot" or session is None:
            return
        started = time.perf_counter()
        guilds = []
        # A guild not loaded yet (no member of the bot's own) is left out: the next owner
        # loads it on its first event, like any guild the snapshot lacks.
        held = [g for g in self.bot.guilds if g.shard_id == shard_id]
        for guild in [g for g in held if g.me is not None and not g.unavailable]:
            guilds.append(guild_payload(guild))
            await _breathe(len(guilds))
        snapshot = ShardSnapshot(session.session_id, session.sequence, session.fence, guilds)
        blob = await asyncio.to_thread(snapshot.encode)
        await self.snapshots.save(shard_id, session.fence, blob)
        took = time.perf_counter() - started
        metrics.SNAPSHOT_BYTES.observe(len(blob))
        metrics.SNAPSHOT_WRITE.observe(took)
        log.info(
            "shard %d: snapshot of %d guild(s) left under fence %d (%d KB, %.2f s)",
            shard_id,
            len(guilds),
            session.fence,
            len(blob) // 1024,
            took,
        )

    async def take(self, shard_id: int, saved: SavedSession) -> str:
        """Load the shard's guild state before its session is resumed; how it was loaded."""
        how = "lazy"
        if self.mode == "snapshot" and await self._from_snapshot(shard_id, saved):
            how = "snapshot"
        elif self.mode in ("eager", "snapshot"):  # snapshot: none usable (the old owner crashed)
            loaded = await load_shard_guilds(self.bot, shard_id)
            metrics.HANDOVER_GUILDS.labels("rest").inc(loaded.guilds)
            how = "rest"
        self.lazy.adopt(shard_id)  # whatever is still missing loads on its first event
        return how

    async def _from_snapshot(self, shard_id: int, saved: SavedSession) -> bool:
        blob = await self.snapshots.take(shard_id, saved.fence)
        if blob is None:
            log.info(
                "shard %d: no snapshot under fence %d; loading over REST", shard_id, saved.fence
            )
            return False
        try:
            snapshot = await asyncio.to_thread(ShardSnapshot.decode, blob)
        except (ValueError, KeyError, zlib.error) as error:
            log.warning("shard %d: unreadable snapshot (%s); loading over REST", shard_id, error)
            return False
        if not snapshot.belongs_to(saved.session_id, saved.sequence, saved.fence):
            log.warning(
                "shard %d: stale snapshot (session %s seq %d fence %d, saved: %s seq %d fence %d);"
                " loading over REST",
                shard_id,
                snapshot.session_id,
                snapshot.sequence,
                snapshot.fence,
                saved.session_id,
                saved.sequence,
                saved.fence,
            )
            return False
        for done, data in enumerate(snapshot.guilds, 1):
            internals.add_guild(self.bot, data)
            await _breathe(done)
        metrics.HANDOVER_GUILDS.labels("snapshot").inc(len(snapshot.guilds))
        return True


async def _breathe(done: int) -> None:
    """Let the event loop run (heartbeats, lease renewals) every BATCH guilds."""
    if done % BATCH == 0:
        await asyncio.sleep(0)
