"""Starting the bot.

Against Discord (`run_bot`), inside a sandbox (`sandbox_bot_factory`), and publishing its slash
commands (`sync_commands`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import discord

from app.bot.client import GuildBot
from app.bot.discord_internals import missing_internals, point_discord
from app.bot.fatal import ExitCode, Fatal, classify
from app.bot.health import probes_for
from app.config import Settings, get_settings
from app.coord.shard_plan import OutsidePlan
from app.ops import gc_tuning, taskdump
from app.ops.event_loop import loop_factory, running_loop_name
from app.ops.exits import serving_failure
from app.ops.http import OpsServer

log = logging.getLogger(__name__)


async def start_bot(
    settings: Settings, token: str, *, sync: bool = False, **options: Any
) -> GuildBot:
    """Log in and start connecting, in a task of its own; returns once logged in.

    setup_hook runs in that task, so the bot's database context is inherited by its shards
    but not by the caller (a test keeps its own). Wait with `bot.wait_until_ready()`.
    """
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    bot = GuildBot(settings, **options)

    async def boot() -> None:
        await bot.login(token)
        if sync:
            await bot.tree.sync()
        bot.gateway_task = asyncio.create_task(bot.connect(reconnect=True), name="gateway")

    await asyncio.create_task(boot())
    return bot


#: The sandbox console's own database, apart from the bot's (data/bot.sqlite3): each console
#: run starts a new demo world, and this database starts with it unless the console is told
#: --keep. A DATABASE_URL that is set is used as it is, never emptied.
SANDBOX_DATABASE = Path("data/sandbox.sqlite3")


def sandbox_database(settings: Settings, fresh: bool) -> str:
    """The database URL for the console's bot; removes the console's own file when `fresh`."""
    if "database_url" in settings.model_fields_set:
        log.warning("DATABASE_URL is set: the sandbox console uses it as it is (no --fresh)")
        return settings.database_url
    if fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            SANDBOX_DATABASE.with_name(SANDBOX_DATABASE.name + suffix).unlink(missing_ok=True)
    return f"sqlite://{SANDBOX_DATABASE}"


async def sandbox_bot_factory(server: Any, fresh: bool = True) -> GuildBot:
    """A bot for `console_main`, in-process, pointed at the sandbox `server`.

    The caller gives the sandbox (the bot never imports it); the bot logs in with its
    `bot_token` and syncs its commands.

    The database is the console's own SQLite file, emptied when `fresh` (see
    SANDBOX_DATABASE), or DATABASE_URL when set; Redis only if REDIS_URL is set.
    """
    settings = get_settings()
    settings = settings.model_copy(
        update={
            "database_url": sandbox_database(settings, fresh),
            "discord_api_base": server.rest_base,
            "discord_gateway_url": server.gateway_url,
            "shard_count": None,
            "shard_ids": None,
        }
    )
    return await start_bot(settings, server.bot_token, sync=True, guild_ready_timeout=0.2)


async def serve(settings: Settings, token: str) -> int:
    """Run the bot until it stops; the process's exit code.

    0 after SIGTERM/SIGINT once shards are handed over and everything closed; a fatal cause's
    code after its one line (app/bot/fatal.py); 1 after an unexpected error.
    """
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    try:
        bot = GuildBot(settings)
    except (OutsidePlan, ValueError) as error:
        log.error("%s", error)
        return ExitCode.CONFIGURATION
    missing = missing_internals(bot)
    if missing:
        log.error("this discord.py lacks what the bot relies on: %s", ", ".join(missing))
        return ExitCode.CONFIGURATION
    loop = asyncio.get_running_loop()
    log.info("event loop: %s", running_loop_name())
    main = asyncio.current_task()
    stopping: list[asyncio.Task[None]] = []
    probes = probes_for(bot)
    ops = OpsServer(probes, host=settings.ops_host, port=settings.ops_port)
    await ops.start()

    def on_signal(name: str) -> None:
        where = bot.keeper.phases.summary() if bot.keeper is not None else "starting"
        log.info("%s: stopping (%s)", name, where)
        probes.stopping = True
        if not bot.set_up and main is not None:
            main.cancel()  # still logging in or opening the services: nothing to hand over
        elif not stopping:
            stopping.append(asyncio.create_task(bot.close()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    taskdump.install(loop)
    failure: Fatal | None = None
    try:
        async with bot:
            await bot.start(token)
    except asyncio.CancelledError:
        log.info("stopped during start-up")
    except Exception as error:
        if isinstance(error, OSError) and serving_failure(error, settings) is not None:
            raise  # a known cause, named in one line by the command line (app/ops/exits.py)
        failure = classify(error, bot.shard_count)
        if failure.code is ExitCode.UNEXPECTED:
            log.error("%s", failure.line, exc_info=error)
        elif bot.failure is None:
            log.error("%s", failure.line)
    finally:
        if stopping:
            await stopping[0]
        await bot.close()  # a shutdown that a fatal cause began ends before the loop does
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        taskdump.uninstall(loop)
        await ops.stop()
    failure = bot.failure or failure
    return failure.code if failure is not None else ExitCode.STOPPED


def run_bot(settings: Settings) -> int:
    """`python -m app run`: the bot against Discord (or DISCORD_API_BASE); an exit code."""
    if not settings.discord_token:
        log.error("DISCORD_TOKEN is not set")
        return 2
    gc_tuning.tune()  # a large, long-lived guild cache: app/ops/gc_tuning.py
    # EVENT_LOOP: the two loops measured alike per command (docs/benchmarks.md).
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        return runner.run(serve(settings, settings.discord_token))


async def publish_commands(
    settings: Settings, token: str, guild_id: int | None = None
) -> list[discord.app_commands.AppCommand]:
    """Upload the slash commands: globally, or to one guild (instant, for testing)."""
    point_discord(settings.discord_api_base, settings.discord_gateway_url)
    bot = GuildBot(settings, with_services=False)
    async with bot:
        await bot.login(token)
        if guild_id is None:
            return await bot.tree.sync()
        guild = discord.Object(guild_id)
        bot.tree.copy_global_to(guild=guild)
        return await bot.tree.sync(guild=guild)


def sync_commands(settings: Settings, guild_id: int | None = None) -> int:
    """`python -m app sync-commands [--guild ID]`: publish the slash commands; an exit code."""
    if not settings.discord_token:
        log.error("DISCORD_TOKEN is not set")
        return 2
    synced = asyncio.run(publish_commands(settings, settings.discord_token, guild_id))
    where = f"guild {guild_id}" if guild_id else "every guild (global)"
    print(f"synced {len(synced)} command(s) to {where}")
    return 0
