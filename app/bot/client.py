"""The bot: an AutoShardedBot that owns the database, Redis and the domain services.

Tortoise is initialised inside setup_hook, in a Tortoise context of the bot's own, so every
shard task and event handler (all created after it) sees the database, and a test that runs the
bot in its own loop keeps its own database context apart. Shutdown drains: new commands are
refused, commands in flight finish (up to a grace period), then the gateway, Redis and the
database close in that order; `close()` does all of it, whoever calls it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from tortoise.context import TortoiseContext

from app.bot import errors, gateway_access, telemetry
from app.bot.rebalance import Rebalancer
from app.bot.sharding import ShardKeeper
from app.config import Settings
from app.coord import Coordination
from app.coord.locks import RedisLocks
from app.coord.shard_plan import ShardPlan, cluster_shard_count, pod_index
from app.db.connect import open_database
from app.domain.economy import Bank
from app.domain.leaderboard import Leaderboard
from app.ops import metrics
from app.ops.logs import log_context

log = logging.getLogger(__name__)

DRAIN_GRACE = 20.0


class InFlight:
    """Counts commands being handled so shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        """Mark one unit of work as running for the duration of the block."""
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, grace: float) -> bool:
        """Wait until nothing is in flight; False if `grace` seconds ran out first."""
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


class GuildTree(app_commands.CommandTree):
    """The command tree: tracks slash commands in flight and routes errors to one handler."""

    async def _call(self, interaction: discord.Interaction) -> None:
        inflight: InFlight | None = getattr(self.client, "inflight", None)
        if inflight is None:
            await super()._call(interaction)
            return
        with log_context(guild_id=interaction.guild_id, shard_id=_shard_of(interaction)):
            async with inflight.track():
                await super()._call(interaction)

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Errors raised before a command's own handler could run."""
        await errors.on_app_command_error(interaction, error)


def build_intents(settings: Settings) -> discord.Intents:
    """Only what the features need.

    guilds (channels, roles, the bot's own member), guild messages (XP, prefix commands),
    moderation (GUILD_AUDIT_LOG_ENTRY_CREATE, for bans, kicks and timeouts done by hand) and
    message content when the setting allows prefix commands. No members intent: slash
    commands carry their resolved members and prefix commands fetch the one they name.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.moderation = True
    intents.message_content = settings.message_content_intent
    return intents


def shard_options(settings: Settings) -> tuple[int | None, list[int] | None]:
    """(shard_count, shard_ids) for AutoShardedBot.

    SHARD_IDS when given; else, with SHARDS_PER_POD, this pod's range of the shard plan
    (OutsidePlan when the pod has none); else every shard. SHARD_COUNT=auto (or unset) lets
    Discord recommend the count, which only works for a single process.
    """
    count = settings.shard_count if isinstance(settings.shard_count, int) else None
    ids = settings.shard_ids
    if ids is None and count is not None and settings.shards_per_pod:
        index = settings.pod_index if settings.pod_index is not None else pod_index()
        ids = ShardPlan(count, settings.shards_per_pod).shards_of(index)
    if ids is not None and count is None:
        raise ValueError("SHARD_IDS (or SHARDS_PER_POD) needs a numeric SHARD_COUNT")
    return count, ids


def command_prefix(settings: Settings) -> Any:
    """`!` (the configured prefix) or a mention; only a mention without message content."""
    if settings.message_content_intent:
        return commands.when_mentioned_or(settings.command_prefix)
    return commands.when_mentioned


class GuildBot(commands.AutoShardedBot):
    """The community bot. Services (bank, leaderboard, coordination) exist after setup_hook."""

    def __init__(
        self,
        settings: Settings,
        *,
        with_services: bool = True,
        drain_grace: float = DRAIN_GRACE,
        **options: Any,
    ) -> None:
        shard_count, shard_ids = shard_options(settings)
        options.setdefault("shard_count", shard_count)
        options.setdefault("shard_ids", shard_ids)
        super().__init__(
            command_prefix=command_prefix(settings),
            intents=build_intents(settings),
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,
            tree_cls=GuildTree,
            case_insensitive=True,
            strip_after_prefix=True,
            **options,
        )
        self.settings = settings
        self.with_services = with_services
        #: Leases, identify queue and session handover (after setup_hook).
        self.keeper: ShardKeeper | None = None
        #: Shards READY (or RESUMED) and not disconnected since.
        self.ready_shards: set[int] = set()
        #: Live rebalancing (REDIS_URL and SHARD_COUNT without SHARDS_PER_POD / SHARD_IDS).
        self.rebalancer: Rebalancer | None = None
        self.drain_grace = drain_grace
        self.inflight = InFlight()
        self.draining = False
        self.coord: Coordination | None = None
        self._bank: Bank | None = None
        self._leaderboard: Leaderboard | None = None
        self._db: TortoiseContext | None = None
        self._services_closed = False
        #: The gateway connection task when started by app.bot.runner.start_bot.
        self.gateway_task: asyncio.Task[None] | None = None
        self.add_check(self._accepting_commands)

    # -- services --------------------------------------------------------------------------
    @property
    def bank(self) -> Bank:
        """The bank (after setup_hook)."""
        if self._bank is None:
            raise RuntimeError("the bot's services are not open")
        return self._bank

    @property
    def leaderboard(self) -> Leaderboard:
        """Leaderboard reads (after setup_hook)."""
        if self._leaderboard is None:
            raise RuntimeError("the bot's services are not open")
        return self._leaderboard

    async def setup_hook(self) -> None:
        """Open the database and Redis, then add the cogs."""
        from app.bot.cogs import build_cogs

        if self.with_services:
            await self._open_services()
        for cog in build_cogs(self):
            await self.add_cog(cog)

    async def _open_services(self) -> None:
        s = self.settings
        self._db = TortoiseContext()
        self._db.__enter__()  # this task's context, inherited by every task created from here
        await open_database(s.database_url, s.db_pool_min, s.db_pool_max)
        if s.redis_url:
            self.coord = Coordination.from_redis(
                s.redis_url, s.lock_ttl_ms, s.lock_wait_ms, s.leaderboard_cache_ttl_s
            )
        else:
            self.coord = Coordination.local(s.lock_wait_ms)
        if isinstance(self.coord.locks, RedisLocks):
            self.coord.locks.on_wait = metrics.REDIS_LOCK_WAIT.observe
        self._bank = Bank(self.coord, s.transfer_max, s.grant_max)
        self._leaderboard = Leaderboard(self.coord.leaderboard)
        if s.shard_count == "auto":
            self.shard_count = await cluster_shard_count(self.coord.redis, self._recommended)
            log.info("SHARD_COUNT=auto: %d shards", self.shard_count)
        self.keeper = ShardKeeper(self, s, self.coord)
        await self.keeper.start()
        if live_rebalancing(s):
            index = s.pod_index if s.pod_index is not None else pod_index()
            self.rebalancer = Rebalancer(self, index, s.rebalance_grace_s)
        log.info("services open: database=%s redis=%s", _kind(s.database_url), bool(s.redis_url))

    async def _recommended(self) -> int:
        shards, _, _ = await self.http.get_bot_gateway()
        return int(shards)

    async def _close_services(self) -> None:
        if self._services_closed:
            return
        self._services_closed = True
        if self.coord is not None:
            await self.coord.close()
        if self._db is not None:
            await self._db.close_connections()
        log.info("services closed")

    # -- lifecycle -------------------------------------------------------------------------
    async def launch_shards(self) -> None:
        """Launch the configured shards; with live rebalancing, let the rebalancer pick them."""
        if self.rebalancer is None:
            await super().launch_shards()
            return
        self.shard_ids = []
        self._connection.shard_count = self.shard_count
        self._connection.shard_ids = self.shard_ids
        await self.rebalancer.start()

    async def launch_shard(self, gateway: Any, shard_id: int, *, initial: bool = False) -> None:
        """Take the shard's lease first; RESUME a session a previous owner saved, if any."""
        if self.keeper is not None and await self.keeper.launch(shard_id, initial):
            return
        await super().launch_shard(gateway, shard_id, initial=initial)

    async def take_shard(self, shard_id: int) -> None:
        """Start running one more shard in this process (live rebalancing)."""
        self.shard_ids = sorted({*(self.shard_ids or []), shard_id})
        self._connection.shard_ids = self.shard_ids
        await self.launch_shard(DiscordWebSocket.DEFAULT_GATEWAY, shard_id)

    async def release_shard(self, shard_id: int) -> None:
        """Stop running a shard here and forget its guilds; its session stays resumable."""
        assert self.keeper is not None
        await self.keeper.release(shard_id)
        self.ready_shards.discard(shard_id)
        self.shard_ids = [s for s in self.shard_ids or [] if s != shard_id]
        self._connection.shard_ids = self.shard_ids
        gateway_access.forget_guilds(self, shard_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait for the lease, the identify bucket and the session budget (app/bot/sharding)."""
        if self.keeper is not None and shard_id is not None:
            await self.keeper.before_identify(shard_id)

    async def on_shard_connect(self, shard_id: int) -> None:
        """READY arrived: the identify bucket can be released."""
        if self.keeper is not None:
            await self.keeper.shard_ready_seen(shard_id)
        if self.rebalancer is not None:
            await self.rebalancer.shard_running(shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        """A resumed shard serves at once; one resumed from another process loads its guilds."""
        self.ready_shards.add(shard_id)
        log.info("shard %s resumed", shard_id)
        if self.keeper is not None and self.keeper.take_handover(shard_id):
            loaded = await gateway_access.hydrate_guilds(self, shard_id)
            log.info("shard %s: loaded %d guild(s) after the handover", shard_id, loaded)
        if self.rebalancer is not None:
            await self.rebalancer.shard_running(shard_id)
        if self.all_shards_ready():
            gateway_access.mark_ready(self)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        """The shard is not serving until it is READY or RESUMED again."""
        self.ready_shards.discard(shard_id)

    def running_shards(self) -> list[int]:
        """The shards this process is meant to run now (live: its current share)."""
        if self.rebalancer is not None:
            return list(self.shard_ids or [])
        return list(self.shard_ids or range(self.shard_count or 1))

    def all_shards_ready(self) -> bool:
        """Every shard this process runs is READY (what /readyz and /startupz report)."""
        if self.rebalancer is not None:
            return self.rebalancer.settled
        wanted = set(self.running_shards())
        return bool(wanted) and wanted <= self.ready_shards

    async def close(self) -> None:
        """Refuse new commands, let those in flight finish (up to `drain_grace` seconds), then
        close the gateway and HTTP session (cogs unload first), Redis and the database."""
        if not self.draining:
            self.draining = True
            log.info("closing: %d command(s) in flight", self.inflight.count)
            if not await self.inflight.wait_idle(self.drain_grace):
                log.warning("%d command(s) still running, closing anyway", self.inflight.count)
        try:
            if self.rebalancer is not None:
                await self.rebalancer.leave()
            if self.keeper is not None:
                await self.keeper.hand_over()
            await super().close()
        finally:
            await self._close_services()

    async def _accepting_commands(self, ctx: commands.Context[Any]) -> bool:
        if self.draining:
            raise errors.Refusal("I am restarting; try again in a few seconds.")
        return True

    async def invoke(self, ctx: commands.Context[Any]) -> None:  # type: ignore[override]
        """Run a prefix command, counted as in flight, its log lines tagged with guild and shard."""
        guild = ctx.guild
        with log_context(guild_id=guild and guild.id, shard_id=guild and guild.shard_id):
            async with self.inflight.track():
                await super().invoke(ctx)

    async def on_command_error(  # type: ignore[override]
        self, ctx: commands.Context[Any], error: commands.CommandError, /
    ) -> None:
        """Errors no cog handled inline (unknown commands, commands outside cogs)."""
        if ctx.cog is not None and ctx.cog.has_error_handler():
            return
        await errors.on_command_error(ctx, error)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """An exception in an event handler: logged with the event, the shard carries on."""
        guild = next((getattr(a, "guild", None) for a in args if getattr(a, "guild", None)), None)
        log.exception("error in event %s (guild %s)", event_method, getattr(guild, "id", None))

    @property
    def db_context(self) -> TortoiseContext | None:
        """The bot's Tortoise context (after setup_hook), for work in foreign tasks."""
        return self._db

    async def on_command_completion(self, ctx: commands.Context[Any]) -> None:
        """Count a command that finished without error."""
        telemetry.command_finished(ctx, "ok")

    async def on_shard_ready(self, shard_id: int) -> None:
        """The shard is READY and its guilds are loaded."""
        if shard_id not in gateway_access.shards_of(self):
            return  # given up meanwhile (live rebalancing)
        self.ready_shards.add(shard_id)
        log.info("shard %s ready", shard_id)


def live_rebalancing(settings: Settings) -> bool:
    """Shards follow the live membership unless a fixed plan or list is configured."""
    return bool(
        settings.redis_url
        and settings.shard_count is not None
        and settings.shards_per_pod is None
        and settings.shard_ids is None
    )


def _shard_of(interaction: discord.Interaction) -> int | None:
    count = interaction.client.shard_count
    if interaction.guild_id is None or not count:
        return None
    return (interaction.guild_id >> 22) % count


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite://") else "postgresql"
