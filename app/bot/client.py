"""The bot: an AutoShardedBot that owns the database, Redis and the domain services.

The services (app/services.py) are opened inside setup_hook, in a database context of the
bot's own, so every shard task and event handler (all created after it) sees the database, and a
test that runs the bot in its own loop keeps its own database context apart.

Shards are launched in a task of their own (app/bot/sharding.py), so that discord.py handles
each shard's gateway events (a rejected identify, a fatal close) while the others still wait
in the identify queue. Shutdown: start-up stops where it is, each shard keeps serving until it
is parked and handed over (its later events are replayed to the next owner), commands in
flight finish (up to a grace period), then the gateway, Redis and the database close in that
order; `close()` does all of it, once, whoever calls it. A fatal cause (app/bot/fatal.py) is
kept in `failure` and ends the process the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot import deadlines, errors, telemetry
from app.bot import discord_internals as internals
from app.bot.acknowledge import adopt
from app.bot.acting import ActingGate
from app.bot.checks import can_answer
from app.bot.fatal import ExitCode, Fatal, FatalError
from app.bot.rebalance import Rebalancer
from app.bot.replies import GuildContext
from app.bot.resharding import Resharder
from app.bot.rest_gate import RestGate
from app.bot.sharding import ShardKeeper
from app.config import Settings
from app.coord.generations import Generation
from app.coord.rest_budget import RestPolicy
from app.coord.shard_plan import ShardPlan, cluster_shard_count, pod_index, shard_for_guild
from app.ops import gc_tuning
from app.ops.deadline import applying
from app.ops.logs import log_context
from app.services import Services

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


class GuildTree(internals.WrappedTree):
    """The command tree: tracks slash commands in flight and routes errors to one handler."""

    async def around(
        self, interaction: discord.Interaction, call: Callable[[], Awaitable[None]]
    ) -> None:
        """Run one slash command within its deadline, counted as in flight, its log lines tagged.

        One that arrived too late to be answered is not run (app/bot/deadlines.py), unless an
        earlier delivery deferred it and left it waiting (app/bot/acknowledge.py): then it runs
        within the follow-ups' 15 minutes.
        """
        bot = self.client
        if not isinstance(bot, GuildBot):
            await call()
            return
        with log_context(guild_id=interaction.guild_id, shard_id=_shard_of(interaction)):
            deadline = deadlines.of_interaction(interaction, bot.settings)
            if deadline.expired() and await adopt(interaction):
                deadline = deadlines.of_interaction(interaction, bot.settings, adopted=True)
            if deadlines.arrived_too_late(deadline, _command_name(interaction), interaction.id):
                return
            with applying(deadline):
                async with bot.inflight.track():
                    await call()

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
    Discord recommend the count, which only works for a single process. The settings have
    checked that SHARD_IDS and SHARDS_PER_POD come with a numeric SHARD_COUNT.
    """
    count = settings.shard_count if isinstance(settings.shard_count, int) else None
    ids = settings.shard_ids
    if ids is None and count is not None and settings.shards_per_pod:
        index = settings.pod_index if settings.pod_index is not None else pod_index()
        ids = ShardPlan(count, settings.shards_per_pod).shards_of(index)
    return count, ids


def command_prefix(settings: Settings) -> Any:
    """`!` (the configured prefix) or a mention; only a mention without message content."""
    if settings.message_content_intent:
        return commands.when_mentioned_or(settings.command_prefix)
    return commands.when_mentioned


class GuildBot(commands.AutoShardedBot):
    """The community bot. Its services (app/services.py) exist after setup_hook."""

    def __init__(
        self,
        settings: Settings,
        *,
        with_services: bool = True,
        drain_grace: float = DRAIN_GRACE,
        anchor: GuildBot | None = None,
        generation: Generation | None = None,
        **options: Any,
    ) -> None:
        shard_count, shard_ids = shard_options(settings)
        if generation is not None:
            shard_count, shard_ids = generation.shard_count, None
        internals.measure_round_trips()
        gate = RestGate(settings.discord_api_base)
        options.setdefault("http_trace", gate.trace())
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
        #: The process's first client, when this one runs another shard generation beside it
        #: (app/bot/resharding.py): it owns the services this one uses.
        self.anchor = anchor
        #: The shard generation this client runs (None: no generations, without Redis).
        self.generation = generation
        #: Which events this client acts on (app/bot/acting.py).
        self.gate = ActingGate(None)
        #: The process's resharding (the anchor's, with live rebalancing).
        self.resharder: Resharder | None = None
        #: Its generation is over: its sessions ended, it acts on nothing.
        self.retired = False
        #: Every REST request waits for its turn in the cluster's budget (REST_BUDGET).
        self.rest_gate = gate
        #: Leases, identify queue and session handover (after setup_hook).
        self.keeper: ShardKeeper | None = None
        #: Shards READY (or RESUMED) and not disconnected since.
        self.ready_shards: set[int] = set()
        #: Live rebalancing (REDIS_URL and SHARD_COUNT without SHARDS_PER_POD / SHARD_IDS).
        self.rebalancer: Rebalancer | None = None
        self.drain_grace = drain_grace
        self.inflight = InFlight()
        #: close() began: start-up stops, shards are handed over.
        self.stopping = False
        #: Shards handed over and commands in flight done: new commands are refused.
        self.draining = False
        #: setup_hook finished (services open, cogs added).
        self.set_up = False
        #: Why the process stops for good, if it does (the first cause).
        self.failure: Fatal | None = None
        self._services: Services | None = None
        self._services_closed = False
        self._launcher: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        #: The gateway connection task when started by app.bot.runner.start_bot.
        self.gateway_task: asyncio.Task[None] | None = None
        self.add_check(self._accepting_commands)
        self.add_check(can_answer)

    # -- services --------------------------------------------------------------------------
    @property
    def services(self) -> Services:
        """Bank, leaderboard, levels, moderation, guild settings, coordination (after setup)."""
        if self._services is None:
            raise RuntimeError("the bot's services are not open")
        return self._services

    @property
    def has_services(self) -> bool:
        """True once setup_hook opened the services (and until they are closed)."""
        return self._services is not None and not self._services_closed

    async def setup_hook(self) -> None:
        """Open the database and Redis, then add the cogs."""
        from app.bot.cogs import build_cogs

        internals.skip_own_messages(self)  # first: the wrappers installed later see them
        internals.keep_peer_close_codes(self)
        if self.with_services:
            await self._open_services()
        for cog in build_cogs(self):
            await self.add_cog(cog)
        self.set_up = True

    async def _open_services(self) -> None:
        s = self.settings
        if self.anchor is not None:  # another generation's client: the anchor's services
            self._services = services = self.anchor.services
        else:
            # Opened in this task: every task created from here on inherits the database context.
            self._services = services = await Services.open(s)
        coord = services.coord
        if s.shard_count == "auto" and self.anchor is None:
            self.shard_count = await cluster_shard_count(coord.redis, self._recommended)
            log.info("SHARD_COUNT=auto: %d shards", self.shard_count)
        live = live_rebalancing(s) and coord.membership is not None
        if live and self.anchor is None and coord.redis is not None:
            self.resharder = await Resharder.open(self, coord.redis)
        if self.generation is not None:
            coord = coord.for_generation(self.generation)
            self.gate = ActingGate(self.generation.number)
        if s.rest_budget:
            self.rest_gate.attach(coord.rest, RestPolicy.of(s))
        self.keeper = ShardKeeper(self, s, coord)
        await self.keeper.start()
        self.gate.install(self)  # in front of the parsers the keeper wrapped
        resharder = self.anchor.resharder if self.anchor is not None else self.resharder
        if resharder is not None and self.generation is not None:
            resharder.adopt(self)
        if live and coord.membership is not None and coord.slot is not None:
            self.rebalancer = Rebalancer(self, coord.membership, coord.slot)
        kind = "sqlite" if s.is_sqlite else "postgresql"
        log.info("services open: database=%s redis=%s", kind, coord.redis is not None)

    async def _recommended(self) -> int:
        shards, _, _ = await self.http.get_bot_gateway()
        return int(shards)

    async def _close_services(self) -> None:
        if self._services_closed:
            return
        self._services_closed = True
        try:
            await self.rest_gate.close()
        finally:  # the database's thread (SQLite) would keep the process alive
            if self._services is not None and self.anchor is None:
                await self._services.close()
                log.info("services closed")

    # -- lifecycle -------------------------------------------------------------------------
    async def launch_shards(self) -> None:
        """Launch the configured shards in a task of their own.

        discord.py's event loop runs meanwhile; with live rebalancing the rebalancer picks them.
        """
        if self.is_closed():
            return
        if self.rebalancer is None:
            self._launcher = asyncio.create_task(super().launch_shards(), name="shard-launcher")
            self._launcher.add_done_callback(self._launched)
            return
        internals.set_shards(self, [], self.shard_count)
        await self.rebalancer.start()

    def _launched(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        if isinstance(error, FatalError):
            self.fail(error.fatal)
        else:
            log.error("launching the shards failed", exc_info=error)
            self.fail(Fatal(ExitCode.UNEXPECTED, f"launching the shards failed: {error!r}"))

    async def launch_shard(self, gateway: Any, shard_id: int, *, initial: bool = False) -> None:
        """Take the shard's lease, then RESUME a saved session or IDENTIFY (app/bot/sharding)."""
        if self.keeper is None:
            raise RuntimeError("the bot's services are not open: it cannot run shards")
        await self.keeper.launch(shard_id, initial)

    async def take_shard(self, shard_id: int) -> None:
        """Start running one more shard in this process (live rebalancing)."""
        internals.set_shards(self, sorted({*(self.shard_ids or []), shard_id}), None)
        await self.launch_shard(internals.default_gateway(), shard_id)

    async def release_shard(self, shard_id: int) -> None:
        """Stop running a shard here and forget its guilds; its session stays resumable."""
        assert self.keeper is not None
        await self.keeper.release(shard_id)
        self.ready_shards.discard(shard_id)
        internals.set_shards(self, [s for s in self.shard_ids or [] if s != shard_id], None)
        internals.forget_guilds(self, shard_id)

    async def retire(self) -> None:
        """This client's generation is over: end its sessions for good and act on nothing.

        A client beside the anchor then closes; the anchor stays, holding the services.
        """
        if self.retired:
            return
        self.retired = True
        if self.rebalancer is not None:
            await self.rebalancer.stop()
            self.rebalancer = None
        if self.keeper is not None:
            await self.keeper.end_sessions()
        self.ready_shards.clear()
        internals.set_shards(self, [], None)
        if self.anchor is not None:
            await self.close()

    def fail(self, fatal: Fatal) -> None:
        """Stop the process for good because of `fatal`: one line, then a clean close.

        In a generation still preparing, it abandons that generation instead.
        """
        if self.anchor is not None and self.anchor.resharder is not None:
            self.anchor.resharder.failed(self, fatal)
            return
        if self.failure is None:
            self.failure = fatal
            log.error("%s", fatal.line)
        if self._closer is None:
            self._closer = asyncio.create_task(self._shut_down(), name="shutdown")

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
        """A resumed shard serves at once (a handed-over one had its guilds loaded before)."""
        self.ready_shards.add(shard_id)
        log.info("shard %s resumed", shard_id)
        if self.keeper is not None:
            self.keeper.shard_serving(shard_id)
        self.dispatch("guilds_loaded", shard_id)  # the outbox finishes what the guilds wait for
        if self.rebalancer is not None:
            await self.rebalancer.shard_running(shard_id)
        if self.all_shards_ready():
            internals.mark_ready(self)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        """The shard is not serving until it is READY or RESUMED again."""
        self.ready_shards.discard(shard_id)

    def running_shards(self) -> list[int]:
        """The shards this process is meant to run now (live: its current share)."""
        if self.rebalancer is not None:
            return list(self.shard_ids or [])
        return list(self.shard_ids or range(self.shard_count or 1))

    def all_shards_ready(self) -> bool:
        """Every shard this process should run is READY (what /readyz and /startupz report)."""
        return self.not_serving() is None

    def not_serving(self) -> str | None:
        """Why this process does not serve the shards it should, or None when it does.

        The shards it should serve: its share of the live assignment (live rebalancing, where
        a pod beyond SHARD_COUNT rightly serves none), else its configured shards.
        """
        acting = self.resharder.acting_client() if self.resharder is not None else self
        if acting is not self:
            return acting.not_serving()
        if self.rebalancer is not None:
            wanted = set(self.rebalancer.mine)
            if not self.rebalancer.settled:
                return f"taking its share of the shards ({sorted(wanted)})"
        else:
            wanted = set(self.running_shards())
        missing = sorted(wanted - self.ready_shards)
        if not missing:
            return None
        reason = f"{len(wanted) - len(missing)} of {len(wanted)} shard(s) serving, not {missing}"
        link = self.services.coord.redis if self.has_services else None
        down = link.down_for if link is not None else None
        if down is not None:
            reason += f"; redis unreachable for {down:.0f} s (shard leases cannot be held)"
        return reason

    async def close(self) -> None:
        """Shut down once; every caller waits for the same shutdown.

        Stop start-up, hand every shard over (each serves until it is parked), let commands in
        flight finish (up to `drain_grace` seconds), then close the gateway and HTTP session,
        Redis and the database.
        """
        if self._closer is None:
            self._closer = asyncio.create_task(self._shut_down(), name="shutdown")
        await asyncio.shield(self._closer)

    async def _shut_down(self) -> None:
        self.stopping = True
        try:
            if self.keeper is not None:
                self.keeper.stop_starting()
            if self.resharder is not None:  # the other generations' clients close first
                await self.resharder.stop()
            if self._launcher is not None and not self._launcher.done():
                self._launcher.cancel()
                await asyncio.gather(self._launcher, return_exceptions=True)
            try:
                if self.rebalancer is not None:
                    await self.rebalancer.leave()
                if self.keeper is not None:
                    await self.keeper.hand_over()
            except Exception:  # the close goes on: a shard not handed over is identified anew
                log.exception("handing the shards over failed")
            log.info("closing: %d command(s) in flight", self.inflight.count)
            if not await self.inflight.wait_idle(self.drain_grace):
                log.warning("%d command(s) still running, closing anyway", self.inflight.count)
            self.draining = True
            await super().close()
        finally:
            await self._close_services()

    async def _accepting_commands(self, ctx: commands.Context[Any]) -> bool:
        if self.draining:
            raise errors.Refusal("I am restarting; try again in a few seconds.")
        return True

    async def get_context(
        self, origin: discord.Message | discord.Interaction, /, *, cls: Any = GuildContext
    ) -> Any:
        """The bot's own context, for prefix and hybrid slash commands alike.

        With it a prefix command answers its message once (app/bot/replies.py).
        """
        return await super().get_context(origin, cls=cls)

    async def invoke(self, ctx: commands.Context[Any]) -> None:
        """Run a prefix command within its deadline, counted as in flight, its log lines tagged.

        One that arrived too late is not run, and the member is told (app/bot/deadlines.py).
        """
        guild = ctx.guild
        with log_context(guild_id=guild and guild.id, shard_id=guild and guild.shard_id):
            deadline = deadlines.of_message(ctx.message, self.settings)
            name = ctx.command.qualified_name if ctx.command else None
            if name and deadlines.arrived_too_late(deadline, name, ctx.message.id):
                await errors.send_ephemeral(ctx, deadlines.too_late_reply(deadline))
                return
            with applying(deadline):
                async with self.inflight.track():
                    await super().invoke(ctx)

    async def on_command_error(
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

    async def on_command_completion(self, ctx: commands.Context[Any]) -> None:
        """Count a command that finished without error."""
        telemetry.command_finished(ctx, "ok")

    async def on_shard_ready(self, shard_id: int) -> None:
        """The shard is READY and its guilds are loaded."""
        if shard_id not in internals.shards_of(self):
            return  # given up meanwhile (live rebalancing)
        self.ready_shards.add(shard_id)
        gc_tuning.freeze()  # its guilds are loaded: out of the collector's scans
        log.info("shard %s ready", shard_id)
        if self.keeper is not None:
            self.keeper.shard_serving(shard_id)


def live_rebalancing(settings: Settings) -> bool:
    """Shards follow the live membership unless a fixed plan or list is configured."""
    return bool(
        settings.redis_url
        and settings.shard_count is not None
        and settings.shards_per_pod is None
        and settings.shard_ids is None
    )


def _command_name(interaction: discord.Interaction) -> str:
    """The slash command's full name, e.g. "config daily" (for logs and metrics)."""
    data: Any = interaction.data or {}
    words = [str(data.get("name", "unknown"))]
    options = data.get("options") or []
    while options and options[0].get("type") in (1, 2):  # a subcommand (group)
        words.append(str(options[0]["name"]))
        options = options[0].get("options") or []
    return " ".join(words)


def _shard_of(interaction: discord.Interaction) -> int | None:
    count = interaction.client.shard_count
    if interaction.guild_id is None or not count:
        return None
    return shard_for_guild(interaction.guild_id, count)
