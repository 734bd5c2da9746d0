"""Command-line entry points: ``serve`` (a standalone sandbox) and ``console`` (REPL + bot)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console as RichConsole

from app.sandbox.builders import build_world, demo_world
from app.sandbox.client_patch import point_discord_at
from app.sandbox.console import Console, describe, ready
from app.sandbox.server import SandboxServer

#: Given the started server, return a started (logging in / connecting) discord.py client.
BotFactory = Callable[[SandboxServer], Awaitable[Any]]


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sandbox serve", description="Run a local Discord-compatible server."
    )
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--guilds", type=int, default=0, help="generated guilds (0: the demo guild)")
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--channels", type=int, default=50)
    p.add_argument("--roles", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--shard-count",
        type=int,
        default=None,
        help="spread generated guilds evenly over this many shards",
    )
    p.add_argument("--identify-window", type=float, default=5.0)
    p.add_argument("--max-concurrency", type=int, default=1)
    p.add_argument("--shards-recommended", type=int, default=None)
    p.add_argument("--heartbeat-interval", type=int, default=41250, help="milliseconds")
    p.add_argument("--interaction-deadline", type=float, default=3.0)
    p.add_argument("--token", default=None, help="require this bot token")
    p.add_argument("--no-compress", action="store_true", help="never use zlib-stream")
    return p


def server_from_args(args: argparse.Namespace) -> SandboxServer:
    """A SandboxServer configured from ``serve`` arguments."""
    shard_count = args.shard_count or args.shards_recommended
    world = (
        build_world(
            args.guilds, args.channels, args.roles, args.members, args.seed, shard_count=shard_count
        )
        if args.guilds
        else demo_world()
    )
    return SandboxServer(
        args.port,
        world=world,
        identify_window=args.identify_window,
        max_concurrency=args.max_concurrency,
        compress=not args.no_compress,
        heartbeat_interval=args.heartbeat_interval,
        shards_recommended=args.shards_recommended,
        interaction_deadline=args.interaction_deadline,
        token=args.token,
    )


async def _serve(args: argparse.Namespace) -> int:
    server = server_from_args(args)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"sandbox listening on {server.url}", flush=True)
    print(
        f"{len(server.world.guilds)} guilds; REST {server.rest_base}; gateway "
        f"{server.gateway_url}; control {server.url}/_sandbox/",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


def serve_main(argv: list[str] | None = None) -> int:
    """``serve``: print ``sandbox listening on URL`` and run until SIGINT/SIGTERM."""
    return asyncio.run(_serve(_serve_parser().parse_args(argv)))


def _console_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sandbox console", description="Talk to the bot as a member of the demo guild."
    )
    p.add_argument("--script", type=Path, help="run these lines and exit (1 on failures)")
    p.add_argument("--member", default="alice", help="who you are at start")
    p.add_argument("--channel", default="general")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--prefix", default="!", help="messages starting with it wait for a reply")
    p.add_argument("--reply-timeout", type=float, default=5.0)
    p.add_argument(
        "--settle", type=float, default=0.3, help="seconds of bot silence that end a reply"
    )
    p.add_argument("--ready-timeout", type=float, default=60.0)
    p.add_argument("--interaction-deadline", type=float, default=3.0)
    return p


async def _read_tty(out: RichConsole, prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(out.input, prompt)
    except EOFError:
        return None


async def _console(args: argparse.Namespace, bot_factory: BotFactory) -> int:
    interactive = args.script is None and sys.stdin.isatty()
    out = RichConsole(highlight=False, width=None if interactive else 100)
    server = SandboxServer(
        args.port, world=demo_world(), interaction_deadline=args.interaction_deadline
    )
    await server.start()
    point_discord_at(server.rest_base, server.gateway_url)
    client = None
    try:
        client = await bot_factory(server)
        await ready(client, args.ready_timeout)
        console = Console(
            server.driver,
            out,
            member=args.member,
            channel=args.channel,
            reply_timeout=args.reply_timeout,
            settle=args.settle,
            prefix=args.prefix,
        )
        out.print(describe(server.driver, console))
        if interactive:
            await console.interactive(lambda prompt: _read_tty(out, prompt))
            return 0
        if args.script is not None:
            lines, name = args.script.read_text().splitlines(), str(args.script)
        else:
            lines, name = (await asyncio.to_thread(sys.stdin.read)).splitlines(), "stdin"
        await console.run_lines(lines, name)
        if console.failures:
            out.print(f"[bold red]{len(console.failures)} failure(s)[/]")
            return 1
        out.print("[bold green]script passed[/]")
        return 0
    finally:
        if client is not None:
            await client.close()
        await server.stop()


def console_main(argv: list[str] | None, bot_factory: BotFactory) -> int:
    """``console``: start a sandbox with :func:`demo_world`, the bot from ``bot_factory``, then
    read lines (``--script FILE``, piped stdin, or an interactive prompt). Returns the exit code:
    1 when a script line failed (an unexpected error reply or a failed ``expect``)."""
    return asyncio.run(_console(_console_parser().parse_args(argv), bot_factory))
