"""Command line of the bot: the `guildbot` console script, or `python -m app`.

guildbot                  Discord when DISCORD_TOKEN is set, else the sandbox console
guildbot run              connect to Discord (DISCORD_TOKEN)
guildbot sandbox [...]    the sandbox console with the bot on the embedded default
guildbot sandbox serve    only the sandbox server, for other clients and benchmarks
guildbot web              the moderators' web console (OAuth2 sign-in, case search, export)
guildbot migrate          apply PostgreSQL migrations (safe from many pods at once)
guildbot makemigration N  write a migration for model changes
guildbot sync-commands    register slash commands (globally or with --guild ID)
guildbot shard-plan       which pod runs which shards (--live: the assignment in Redis)
guildbot reshard --to N   bring N shards up beside the running ones, then switch (--abort)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from app.config import Settings, get_settings
from app.ops.exits import Fatal
from app.ops.logs import setup_logging


def _run(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.bot.runner import run_bot

    if not settings.discord_token:
        print("DISCORD_TOKEN is not set: `python -m app sandbox` runs the bot without Discord.")
        return 2
    if not settings.is_sqlite:  # SQLite creates its schema itself at start
        from app.db.migrate import check_schema
        from app.db.schema import MIGRATIONS_DIR

        asyncio.run(check_schema(settings.database_url, settings.migrations_dir or MIGRATIONS_DIR))
    return _naming_failures(settings, lambda: run_bot(settings))


def _sandbox(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    # The sandbox is a package beside the bot (the production image leaves it out): imported
    # here only, when asked for, so that the bot itself never loads it.
    try:
        from sandbox.cli import console_main, serve_main
    except ModuleNotFoundError as error:
        if error.name != "sandbox":
            raise
        print(
            "The sandbox is not installed here (the production image leaves it out): "
            "run `python -m app sandbox` from a checkout of the repository.",
            file=sys.stderr,
        )
        return 2
    if rest[:1] == ["serve"]:
        return serve_main(rest[1:])
    from app.bot.runner import sandbox_bot_factory
    from app.web.embedded import web_beside

    # The console owns the terminal: the log goes to this file (warnings also on screen).
    return console_main(
        rest, sandbox_bot_factory, log_file=Path("data/sandbox.log"), companion=web_beside
    )


def _web(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.web.server import web_command

    return _naming_failures(settings, lambda: web_command(settings))


def _migrate(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.db.migrate import run_migrations
    from app.db.schema import MIGRATIONS_DIR

    if settings.is_sqlite:
        print("SQLite needs no migrations: its schema is created from the models at start.")
        return 0
    applied = asyncio.run(
        run_migrations(settings.database_url, settings.migrations_dir or MIGRATIONS_DIR)
    )
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _makemigration(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.db.migrate import make_migration

    name = asyncio.run(make_migration(settings.database_url, args.name))
    print(f"wrote {name}" if name else "no changes: the models match the last migration")
    return 0


def _sync_commands(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.bot.runner import sync_commands

    return _naming_failures(settings, lambda: sync_commands(settings, args.guild))


def _naming_failures(settings: Settings, command: Callable[[], int]) -> int:
    """Run a command that reaches Discord (and serves the ops endpoints), naming its failures.

    The OSErrors whose cause is known (app/ops/exits.py) become `Fatal`: one line instead of a
    traceback.
    """
    from app.ops.exits import serving_failure

    try:
        return command()
    except OSError as error:
        fatal = serving_failure(error, settings)
        if fatal is None:
            raise
        raise fatal from None


def _shard_plan(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.coord.shard_plan import OutsidePlan, ShardPlan

    shards = args.shards or settings.shard_count
    if args.live:
        return _live_plan(settings, shards)
    per_pod = args.per_pod or settings.shards_per_pod
    if not isinstance(shards, int) or not per_pod:
        print("give --shards N and --per-pod K (or set SHARD_COUNT and SHARDS_PER_POD)")
        return 2
    plan = ShardPlan(shards, per_pod)
    print(plan.describe())
    if args.pod is not None:
        try:
            print(f"pod {args.pod} runs shards {plan.shards_of(args.pod)}")
        except OutsidePlan as error:
            print(error)
            return 1
    return 0


def _live_plan(settings: Settings, shards: object) -> int:
    from app.coord.cluster_view import describe_cluster
    from app.coord.redis_link import RedisLink

    redis_url = settings.redis_url
    if not redis_url:
        print("--live needs REDIS_URL")
        return 2

    async def show() -> str:
        link = RedisLink(redis_url)
        try:
            count = shards if isinstance(shards, int) else None
            return await describe_cluster(link, count, settings.rebalance_grace_s)
        finally:
            await link.close()

    try:
        print(asyncio.run(show()))
    except ValueError as error:
        print(error)
        return 2
    return 0


def _reshard(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.bot.reshard_command import reshard

    code, line = asyncio.run(reshard(settings, args.to, args.abort))
    print(line)
    return code


COMMANDS = {
    "run": _run,
    "sandbox": _sandbox,
    "web": _web,
    "migrate": _migrate,
    "makemigration": _makemigration,
    "sync-commands": _sync_commands,
    "shard-plan": _shard_plan,
    "reshard": _reshard,
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(
        # `python -m app` would otherwise call itself __main__.py; the console script, guildbot.
        prog="python -m app" if sys.argv[0].endswith("__main__.py") else None,
        description="A sharded Discord bot: economy, levels and moderation. With no command it "
        "connects to Discord when DISCORD_TOKEN is set, else opens the sandbox console.",
        epilog="`COMMAND --help` shows a command's options.",
    )
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    sub.add_parser("run", help="connect to Discord with DISCORD_TOKEN")
    sub.add_parser("sandbox", help="the bot in a local Discord (`sandbox serve`)", add_help=False)
    sub.add_parser("web", help="the moderators' web console (Discord sign-in)")
    sub.add_parser("migrate", help="apply database migrations (PostgreSQL) under a lock")
    make = sub.add_parser("makemigration", help="write a migration for model changes")
    make.add_argument("name")
    sync = sub.add_parser("sync-commands", help="register slash commands")
    sync.add_argument("--guild", type=int, default=None, help="only in this guild (instant)")
    plan = sub.add_parser("shard-plan", help="which pod runs which shards (--live: in Redis)")
    plan.add_argument("--shards", type=int, help="total shards (default: SHARD_COUNT)")
    plan.add_argument("--per-pod", type=int, help="shards per pod (default: SHARDS_PER_POD)")
    plan.add_argument("--pod", type=int, help="also print this pod's shards")
    plan.add_argument("--live", action="store_true", help="the live assignment and leases")
    reshard = sub.add_parser("reshard", help="change the shard count with no downtime")
    which = reshard.add_mutually_exclusive_group(required=True)
    which.add_argument("--to", type=int, metavar="N", help="the new shard count")
    which.add_argument("--abort", action="store_true", help="abandon the reshard in progress")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "sandbox":
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    settings = get_settings()
    setup_logging(settings.log_level)
    command = args.command or ("run" if settings.discord_token else "sandbox")
    try:
        return COMMANDS[command](settings, args, rest)
    except Fatal as fatal:  # one line naming what failed and where (app/ops/exits.py)
        logging.getLogger("app").error("%s", fatal.line)
        return int(fatal.code)


if __name__ == "__main__":
    sys.exit(main())
