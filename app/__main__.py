"""Command line of the bot.

python -m app                  Discord when DISCORD_TOKEN is set, else the sandbox console
python -m app run              connect to Discord (DISCORD_TOKEN)
python -m app sandbox [...]    the sandbox console with the bot on the embedded default
python -m app sandbox serve    only the sandbox server, for other clients and benchmarks
python -m app migrate          apply PostgreSQL migrations (safe from many pods at once)
python -m app makemigration N  write a migration for model changes
python -m app sync-commands    register slash commands (globally or with --guild ID)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from app.config import Settings, get_settings
from app.ops.logs import setup_logging


def _run(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.bot.runner import run_bot

    if not settings.discord_token:
        print("DISCORD_TOKEN is not set: `python -m app sandbox` runs the bot without Discord.")
        return 2
    return run_bot(settings)


def _sandbox(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.sandbox.cli import console_main, serve_main

    if rest[:1] == ["serve"]:
        return serve_main(rest[1:])
    from app.bot.runner import sandbox_bot_factory

    if "LOG_LEVEL" not in os.environ:  # the console is for people: only problems in between
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("discord").setLevel(logging.ERROR)
    return console_main(rest, sandbox_bot_factory)


def _migrate(settings: Settings, args: argparse.Namespace, rest: list[str]) -> int:
    from app.db.connect import is_sqlite
    from app.db.migrate import MIGRATIONS_DIR, run_migrations

    if is_sqlite(settings.database_url):
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

    return sync_commands(settings, args.guild)


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
    from app.coord.cluster_view import describe_live
    from app.coord.redis_link import RedisLink

    if not settings.redis_url or not isinstance(shards, int):
        print("--live needs REDIS_URL and a numeric SHARD_COUNT (or --shards N)")
        return 2

    async def show() -> str:
        link = RedisLink(settings.redis_url)  # type: ignore[arg-type]
        try:
            return await describe_live(link, shards, settings.rebalance_grace_s)
        finally:
            await link.close()

    print(asyncio.run(show()))
    return 0


COMMANDS = {
    "run": _run,
    "sandbox": _sandbox,
    "migrate": _migrate,
    "makemigration": _makemigration,
    "sync-commands": _sync_commands,
    "shard-plan": _shard_plan,
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(
        prog="python -m app", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="connect to Discord with DISCORD_TOKEN")
    sub.add_parser("sandbox", help="the sandbox console (or `sandbox serve`)", add_help=False)
    sub.add_parser("migrate", help="apply database migrations (PostgreSQL) under a lock")
    make = sub.add_parser("makemigration", help="write a migration for model changes")
    make.add_argument("name")
    sync = sub.add_parser("sync-commands", help="register slash commands")
    sync.add_argument("--guild", type=int, default=None, help="only in this guild (instant)")
    plan = sub.add_parser("shard-plan", help="print which pod runs which shards")
    plan.add_argument("--shards", type=int, help="total shards (default: SHARD_COUNT)")
    plan.add_argument("--per-pod", type=int, help="shards per pod (default: SHARDS_PER_POD)")
    plan.add_argument("--pod", type=int, help="also print this pod's shards")
    plan.add_argument("--live", action="store_true", help="the live assignment and leases")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "sandbox":
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    settings = get_settings()
    setup_logging(settings.log_level)
    command = args.command or ("run" if settings.discord_token else "sandbox")
    return COMMANDS[command](settings, args, rest)


if __name__ == "__main__":
    sys.exit(main())
