"""How a shard's guild state goes from the process that releases it to the one that takes it.

A RESUME in a new process brings no GUILD_CREATE, so the new owner must get the shard's guilds
another way. HANDOVER_MODE picks it (measured in docs/benchmarks.md, "Shard handover at scale"):

- `snapshot` (the default): the releasing process writes the guilds it holds to the snapshot
  store under its lease's fence, stamped with the session and sequence it saves next; the new
  owner uses them only if its saved session is exactly that one (otherwise: as `eager`). No REST.
  The guilds are encoded before the park, while the shard still serves (only those changed
  since are encoded again after it: app/bot/snapshot_writer.py), and rebuilt after the RESUME,
  each when first needed (app/bot/pending_guilds.py): the shard goes without a session only
  for the write and read of the blob.
- `lazy`: RESUME at once; each guild is loaded on its first event (app/bot/lazy_guilds.py).
- `eager`: every guild over REST before RESUME (app/bot/hydration.py), three calls each.
- `identify`: the saved session is dropped and the shard IDENTIFYs through the queue (Discord
  sends every GUILD_CREATE; costs one of the day's session starts).

Whatever the mode, a resumed shard's guilds missing from the cache are loaded on first event.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import TYPE_CHECKING, Literal

from app.bot.hydration import load_shard_guilds
from app.bot.lazy_guilds import LazyGuilds
from app.bot.pending_guilds import PendingGuilds
from app.bot.snapshot_writer import SnapshotWriter
from app.coord.sessions import SavedSession
from app.coord.snapshots import ShardSnapshot, SnapshotStore
from app.ops import metrics

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

Mode = Literal["snapshot", "lazy", "eager", "identify"]


class Handover:
    """This process's side of shard handovers, in one HANDOVER_MODE."""

    def __init__(self, bot: GuildBot, mode: Mode, snapshots: SnapshotStore) -> None:
        self.bot = bot
        self.mode = mode
        self.snapshots = snapshots
        self.lazy = LazyGuilds(bot)
        self.writer = SnapshotWriter(bot)
        self.pending = PendingGuilds(bot)

    @property
    def resumes(self) -> bool:
        """Whether a saved session is resumed (every mode but `identify`)."""
        return self.mode != "identify"

    async def prepare(self, shard_id: int) -> None:
        """The shard is about to be parked: encode its guilds while it still serves."""
        if self.mode == "snapshot":
            started = time.perf_counter()
            try:
                count = await self.writer.prepare(shard_id)
            except BaseException:  # cancelled (shutdown): stop watching the shard's guilds
                self.writer.forget(shard_id)
                raise
            log.info(
                "shard %d: %d guild(s) encoded while serving (%.2f s)",
                shard_id,
                count,
                time.perf_counter() - started,
            )

    async def leave(self, shard_id: int, session: SavedSession | None) -> None:
        """The shard was parked and `session` is saved next: hand its guild state on."""
        await self.lazy.release(shard_id)
        unbuilt = await self.pending.take(shard_id)  # taken over, never looked up since
        if self.mode != "snapshot" or session is None:
            self.writer.forget(shard_id)
            return
        started = time.perf_counter()
        guilds = {**unbuilt, **await self.writer.finish(shard_id)}
        blob = ShardSnapshot(session.session_id, session.sequence, session.fence, guilds).encode()
        await self.snapshots.save(shard_id, session.fence, blob)
        took = time.perf_counter() - started
        metrics.SNAPSHOT_BYTES.observe(len(blob))
        metrics.SNAPSHOT_WRITE.observe(took)
        log.info(
            "shard %d: snapshot of %d guild(s) left under fence %d (%d KB, %.2f s after the park)",
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
            snapshot = ShardSnapshot.decode(blob)  # splits it; each guild is unpacked when used
        except (ValueError, KeyError, struct.error) as error:
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
        self.pending.adopt(shard_id, snapshot.guilds)
        log.info("shard %d: %d guild(s) from the snapshot", shard_id, len(snapshot.guilds))
        return True
