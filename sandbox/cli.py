"""Command-line entry points: ``serve`` (a standalone sandbox) and ``console`` (REPL + bot)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console as RichConsole

from sandbox.builders import build_world, demo_world
from sandbox.client_patch import point_discord_at
from sandbox.console import Console, describe, ready
from sandbox.console_logs import route_logs
from sandbox.server import SandboxServer

#: Given the started server and whether the bot starts afresh with this new world (``--fresh``,
#: the default) or keeps its state from the last run (``--keep``), return a started (logging
#: in / connecting) discord.py client.
BotFactory = Callable[[SandboxServer, bool], Awaitable[Any]]
#: Given the started server and the ready bot, start something beside them (the bot's web
#: console) and return a line to show and how to stop it.
Companion = Callable[[SandboxServer, Any], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]]
#: Where the console writes the log when its caller names no other place.
LOG_FILE = Path(tempfile.gettempdir()) / "sandbox-console.log"


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
    p.add_argument(
        "--lazy", action="store_true", help="build each generated guild on first use (large worlds)"
    )
    p.add_argument("--identify-window", type=float, default=5.0)
    p.add_argument("--max-concurrency", type=int, default=1)
    p.add_argument("--shards-recommended", type=int, default=None)
    p.add_argument("--heartbeat-interval", type=int, default=41250, help="milliseconds")
    p.add_argument(
        "--heartbeat-ack-delay", type=float, default=0.03, help="seconds before a HEARTBEAT_ACK"
    )
    p.add_argument("--interaction-deadline", type=float, default=3.0)
    p.add_argument("--token", default=None, help="require this bot token")
    limits = p.add_argument_group("REST limits (off by default; Discord: 50, on, 10000, 600, 3600)")
    limits.add_argument(
        "--global-limit", type=int, default=None, help="requests per second per bot token"
    )
    limits.add_argument("--route-limits", action="store_true", help="per-route buckets")
    limits.add_argument(
        "--invalid-limit", type=int, default=None, help="invalid requests before a Cloudflare ban"
    )
    limits.add_argument("--invalid-window", type=float, default=600.0, help="seconds")
    limits.add_argument("--ban-seconds", type=float, default=3600.0)
    p.add_argument("--no-compress", action="store_true", help="never use zlib-stream")
    return p


def server_from_args(args: argparse.Namespace) -> SandboxServer:
    """A SandboxServer configured from ``serve`` arguments."""
    shard_count = args.shard_count or args.shards_recommended
    world = (
        build_world(
            args.guilds,
            args.channels,
            args.roles,
            args.members,
            args.seed,
            shard_count=shard_count,
            lazy=args.lazy,
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
        heartbeat_ack_delay=args.heartbeat_ack_delay,
        shards_recommended=args.shards_recommended,
        interaction_deadline=args.interaction_deadline,
        token=args.token,
        global_limit=args.global_limit,
        route_limits=args.route_limits,
        invalid_limit=args.invalid_limit,
        invalid_window=args.invalid_window,
        ban_seconds=args.ban_seconds,
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


def _console_parser(log_file: Path) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sandbox console",
        description="Talk to the bot as a member of the demo guild. Every run starts a new "
        "demo world; the bot starts afresh with it unless --keep.",
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
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--fresh",
        dest="keep",
        action="store_false",
        help="the bot's data starts anew, like the world (the default)",
    )
    state.add_argument(
        "--keep",
        action="store_true",
        help="keep the bot's data from the last run (balances, cases) although the world is new",
    )
    p.set_defaults(keep=False)
    p.add_argument(
        "--log-file", type=Path, default=log_file, help=f"the bot's log (default: {log_file})"
    )
    return p


async def _interactive(console: Console, out: RichConsole) -> None:
    """The prompt until the member quits, or SIGINT / SIGTERM from outside."""
    from sandbox.console_terminal import Terminal  # prompt_toolkit: only for a terminal

    loop = asyncio.get_running_loop()
    terminal = Terminal(out)
    session = asyncio.ensure_future(console.interactive(terminal))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, session.cancel)
    try:
        with terminal.keys_only(), contextlib.suppress(asyncio.CancelledError):
            await session
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _console(
    args: argparse.Namespace, bot_factory: BotFactory, companion: Companion | None
) -> int:
    interactive = args.script is None and sys.stdin.isatty() and sys.stdout.isatty()
    out = RichConsole(highlight=False, width=None if interactive else 100)
    route_logs(out, args.log_file)
    server = SandboxServer(
        args.port, world=demo_world(), interaction_deadline=args.interaction_deadline
    )
    await server.start()
    point_discord_at(server.rest_base, server.gateway_url)
    client = None
    stop_companion: Callable[[], Awaitable[None]] | None = None
    try:
        client = await bot_factory(server, not args.keep)
        await ready(client, args.ready_timeout)
        beside = ""
        if companion is not None:
            beside, stop_companion = await companion(server, client)
        console = Console(
            server.driver,
            out,
            member=args.member,
            channel=args.channel,
            reply_timeout=args.reply_timeout,
            settle=args.settle,
            prefix=args.prefix,
        )
        out.print(describe(server.driver, console, fresh=not args.keep, log_file=args.log_file))
        if beside:
            out.print(beside, style="dim", soft_wrap=True)
        if interactive:
            await _interactive(console, out)
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
        if stop_companion is not None:
            await stop_companion()
        if client is not None:
            await client.close()
        await server.stop()


def console_main(
    argv: list[str] | None,
    bot_factory: BotFactory,
    *,
    log_file: Path = LOG_FILE,
    companion: Companion | None = None,
) -> int:
    """``console``: start a sandbox with :func:`demo_world`, the bot from ``bot_factory``, then
    read lines (``--script FILE``, piped stdin, or an interactive prompt). Returns the exit code:
    1 when a script line failed (an unexpected error reply or a failed ``expect``), 130 when
    interrupted before the prompt. ``log_file`` is the default of ``--log-file``; ``companion``
    runs beside the bot (the web console) and its line is shown under the banner."""
    args = _console_parser(log_file).parse_args(argv)
    try:
        return asyncio.run(_console(args, bot_factory, companion))
    except KeyboardInterrupt:  # Ctrl-C while the bot was starting, before the prompt
        print("interrupted", file=sys.stderr)
        return 130
