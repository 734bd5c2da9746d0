"""The per-process outbox loop: ends effects whose time is up and completes pending Discord work.

Each process looks only at the guilds of its own shards, so whichever process serves a guild
completes what another left behind (a crash after a case was recorded, Discord unavailable, a
tempban's end, a pardon's unban). It sleeps until the next thing falls due (an effect's end, a
retry, a claim's lease running out) and is woken early when a case is opened here or a guild
arrives on a shard. State lives in the database, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation.apply import carry_out
from app.bot.cogs.moderation.notices import post_modlog
from app.coord.generations import wall_ms
from app.domain.outbox import BATCH
from app.domain.types import ActionState, CaseView

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: Longest sleep: bounds the delay for work another process recorded for our guilds, or for
#: guilds that arrived without an event this loop listens to.
MAX_SLEEP = 30.0
RETRY_AFTER_ERROR = 10.0
TITLES = {
    ActionState.APPLIED: "done",
    ActionState.FAILED: "failed in Discord",
    ActionState.SKIPPED: "not applied",
}


class Outbox(GuildCog):
    """Completes the Discord work of cases for the guilds this process serves."""

    def __init__(self, bot: GuildBot) -> None:
        super().__init__(bot)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        """Start the loop (over whatever guilds this process serves at each pass)."""
        if self.bot.with_services:
            self._task = asyncio.create_task(self._run(), name="case-outbox")

    async def cog_unload(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Look for due work now."""
        self._wake.set()

    @commands.Cog.listener()
    async def on_case_work_changed(self, guild_id: int) -> None:
        """A case with an end time, or work to retry, was recorded here."""
        self.wake()

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A guild arrived on one of our shards."""
        self.wake()

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """The bot joined a guild."""
        self.wake()

    @commands.Cog.listener()
    async def on_guilds_loaded(self, shard_id: int) -> None:
        """A shard taken over from another process had its guilds loaded."""
        self.wake()

    @commands.Cog.listener()
    async def on_generation_acting(self, number: int) -> None:
        """This client's shard generation was switched to (app/bot/resharding.py)."""
        self.wake()

    async def _run(self) -> None:
        # No wait for the client to be ready: a process whose shards came by RESUME from
        # another may never see READY, and `guild_ids` holds only the guilds it serves.
        while not self.bot.is_closed():
            self._wake.clear()
            try:
                delay = await self.run_once()
            except Exception:
                log.exception("case outbox pass failed")
                delay = RETRY_AFTER_ERROR
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def guild_ids(self) -> list[int]:
        """The guilds of this client's shards (none while its shard generation does not act)."""
        if not self.bot.gate.acting_now(wall_ms()):
            return []
        return [g.id for g in self.bot.guilds]

    async def run_once(self, now: datetime | None = None) -> float:
        """End what is due, complete claimable work; seconds until the next (<= MAX_SLEEP)."""
        ids = self.guild_ids()
        if not ids:
            return MAX_SLEEP
        now = now or datetime.now(UTC)
        outbox = self.bot.services.outbox
        lease = timedelta(seconds=self.bot.settings.outbox_lease_s)
        while ended := await outbox.expire_due(now, ids, BATCH):
            for case in ended:
                log.info("case %s of guild %s ended", case.number, case.guild_id)
                await self._announce(case, "ended")
            if len(ended) < BATCH:
                break
        while claimed := await outbox.claim(ids, now, lease, BATCH):
            for case in claimed:
                await self._complete(case)
            if len(claimed) < BATCH:
                break
        upcoming = await outbox.next_due(ids)
        if upcoming is None:
            return MAX_SLEEP
        return min(max((upcoming - datetime.now(UTC)).total_seconds(), 0.0), MAX_SLEEP)

    async def _complete(self, case: CaseView) -> None:
        """Do a claimed case's work; tell the modlog when its action was settled here."""
        guild = self.bot.get_guild(case.guild_id)
        if guild is None:  # the shard moved away meanwhile: its new owner will do it
            await self.bot.services.outbox.release(case.guild_id, case.number)
            return
        done = await carry_out(self.bot, guild, case)
        if case.action_state == ActionState.PENDING and done.action_state in TITLES:
            await self._announce(done, TITLES[done.action_state])
        log.info(
            "case %s of guild %s: action %s, lift %s, DM %s",
            done.number,
            done.guild_id,
            done.action_state.value,
            done.lift_state.value,
            done.dm_state.value,
        )

    async def _announce(self, case: CaseView, what: str) -> None:
        guild = self.bot.get_guild(case.guild_id)
        if guild is not None:
            await post_modlog(self.bot, guild, case, title=f"Case #{case.number} — {what}")
