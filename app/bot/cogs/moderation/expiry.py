"""Lifting temporary bans (and closing timeouts) when they end, across restarts.

Each process looks only at the guilds of its own shards: it sleeps until the next case of those
guilds expires (moderation.next_expiry), lifts what is due and marks it expired. A case opened
in this process wakes the loop early; a guild arriving on a shard does too. State lives in the
database, so a restart loses nothing: the next process lifts whatever came due meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from app.bot.cogs.base import GuildCog
from app.bot.cogs.moderation.notices import post_modlog
from app.db.models import Case, CaseAction
from app.domain import moderation

if TYPE_CHECKING:
    from app.bot.client import GuildBot

log = logging.getLogger(__name__)

#: Longest sleep: bounds the delay for cases opened by another process for our guilds.
MAX_SLEEP = 300.0
RETRY_AFTER_ERROR = 10.0
BATCH = 100


class Expiry(GuildCog):
    """The per-process expiry loop."""

    def __init__(self, bot: GuildBot) -> None:
        super().__init__(bot)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        """Start the loop (it waits for the shards to be ready)."""
        if self.bot.with_services:
            self._task = asyncio.create_task(self._run(), name="case-expiry")

    async def cog_unload(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Re-read the next expiry now."""
        self._wake.set()

    @commands.Cog.listener()
    async def on_case_expiry_changed(self, guild_id: int) -> None:
        """A case with an end time was opened here."""
        self.wake()

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A guild arrived on one of our shards."""
        self.wake()

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """The bot joined a guild."""
        self.wake()

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        while not self.bot.is_closed():
            self._wake.clear()
            try:
                delay = await self.run_once()
            except Exception:
                log.exception("case expiry pass failed")
                delay = RETRY_AFTER_ERROR
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def guild_ids(self) -> list[int]:
        """The guilds of this process's shards."""
        return [g.id for g in self.bot.guilds]

    async def run_once(self, now: datetime | None = None) -> float:
        """Lift every due case of our guilds; seconds until the next one (at most MAX_SLEEP)."""
        ids = self.guild_ids()
        if not ids:
            return MAX_SLEEP
        now = now or datetime.now(UTC)
        while True:
            batch = await moderation.due(now, ids, limit=BATCH)
            for case in batch:
                await self.lift(case)
            if len(batch) < BATCH:
                break
        upcoming = await moderation.next_expiry(ids)
        if upcoming is None:
            return MAX_SLEEP
        return min(max((upcoming - datetime.now(UTC)).total_seconds(), 0.0), MAX_SLEEP)

    async def lift(self, case: Case) -> None:
        """Unban an ended tempban (a timeout Discord ends itself), then mark the case expired."""
        guild = self.bot.get_guild(case.guild_id)
        note = "expired"
        if case.action == CaseAction.TEMPBAN and guild is not None:
            try:
                await guild.unban(
                    discord.Object(case.target_id), reason=f"Case #{case.number}: tempban ended"
                )
            except discord.NotFound:
                note = "expired (the user was no longer banned)"
            except discord.Forbidden:
                note = "expired, but I lack Ban Members: unban them by hand"
                log.warning("cannot lift tempban case %s in guild %s", case.number, guild.id)
        if await moderation.expire(case.id, note) and guild is not None:
            log.info("case %s of guild %s ended: %s", case.number, case.guild_id, note)
            await post_modlog(guild, case, title=f"Case #{case.number} — ended")
