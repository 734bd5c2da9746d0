"""Every failure of the environment ends `python -m app migrate` / `run` with one line naming
what failed and where (no traceback, no secret) and a documented exit code (app/ops/exits.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.schema import MIGRATIONS_DIR
from app.ops.exits import Exit
from tests.conftest import run_in_thread
from tests.services import pg_base_url
from testsupport.bots import bot_env
from testsupport.databases import create_database, drop_database, with_database
from testsupport.servers import free_port

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-pw"
UNREACHABLE_DISCORD = "http://127.0.0.1:9/api/v10"  # the discard port: nothing listens


def app(command: str, cwd: Path, **env: str) -> tuple[int, str]:
    """`python -m app COMMAND` with `env` as its only bot settings: (exit code, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "app", command],
        env=bot_env(None, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


def the_one_line(stderr: str) -> str:
    """The single error line in a command's stderr (its JSON log lines at ERROR or above, and
    any line that is not JSON); fails when there is not exactly one, or a traceback."""
    assert "Traceback" not in stderr, stderr
    assert SECRET not in stderr, "a password reached the log"
    errors = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            errors.append(line)
            continue
        if record.get("level") in ("ERROR", "CRITICAL"):
            errors.append(record["message"])
    assert len(errors) == 1, stderr
    return errors[0]


def fails_with(code: Exit, says: str, command: str, cwd: Path, **env: str) -> None:
    rc, stderr = app(command, cwd, **env)
    line = the_one_line(stderr)
    assert (rc, says in line) == (code, True), f"exit {rc}: {line}"


@pytest.fixture
def empty_db() -> Iterator[str]:
    """A database with no tables."""
    base = pg_base_url()
    url = run_in_thread(create_database(base, "empty"))
    yield url
    run_in_thread(drop_database(base, url))


def test_migrate_without_migrations_fails(tmp_path: Path, empty_db: str) -> None:
    fails_with(
        Exit.NO_MIGRATIONS,
        f"no migrations in {tmp_path / 'nowhere' / 'models'} (MIGRATIONS_DIR)",
        "migrate",
        tmp_path,
        DATABASE_URL=empty_db,
        MIGRATIONS_DIR=str(tmp_path / "nowhere"),
    )
    (tmp_path / "empty" / "models").mkdir(parents=True)
    fails_with(
        Exit.NO_MIGRATIONS,
        "no migrations in",
        "migrate",
        tmp_path,
        DATABASE_URL=empty_db,
        MIGRATIONS_DIR=str(tmp_path / "empty"),
    )


@pytest.mark.parametrize("command", ["migrate", "run"])
def test_postgresql_that_cannot_be_used(command: str, tmp_path: Path) -> None:
    base = pg_base_url()
    server = base.split("@", 1)[1].split("/", 1)[0]
    bot = {"DISCORD_TOKEN": "x", "DISCORD_API_BASE": UNREACHABLE_DISCORD}
    port = free_port()
    fails_with(
        Exit.UNREACHABLE,
        f"cannot reach PostgreSQL at 127.0.0.1:{port} (DATABASE_URL)",
        command,
        tmp_path,
        DATABASE_URL=f"postgres://bot:{SECRET}@127.0.0.1:{port}/bot",
        **bot,
    )
    fails_with(
        Exit.CONFIG,
        f"database 'no_such_db' on {server} does not exist",
        command,
        tmp_path,
        DATABASE_URL=with_database(base, "no_such_db"),
        **bot,
    )
    fails_with(
        Exit.REFUSED,
        f"PostgreSQL at {server} refused role 'nobody'",
        command,
        tmp_path,
        DATABASE_URL=f"postgres://nobody:{SECRET}@{server}/postgres",
        **bot,
    )


def test_run_refuses_a_database_that_is_not_at_the_head_migration(
    tmp_path: Path, empty_db: str, pg_url: str
) -> None:
    bot = {"DISCORD_TOKEN": "x", "DISCORD_API_BASE": UNREACHABLE_DISCORD}
    fails_with(Exit.SCHEMA, "has no tables", "run", tmp_path, DATABASE_URL=empty_db, **bot)
    newer = tmp_path / "newer"
    shutil.copytree(MIGRATIONS_DIR, newer)
    (newer / "models" / "99_20300101000000_later.py").write_text("# a later release's\n")
    fails_with(
        Exit.SCHEMA,
        "lacks 1 migration(s) (99_20300101000000_later.py)",
        "run",
        tmp_path,
        DATABASE_URL=pg_url,
        MIGRATIONS_DIR=str(newer),
        **bot,
    )


def test_run_names_discord_when_it_does_not_answer(tmp_path: Path) -> None:
    fails_with(
        Exit.UNREACHABLE,
        f"cannot reach Discord at {UNREACHABLE_DISCORD} (DISCORD_API_BASE)",
        "run",
        tmp_path,  # the embedded SQLite database, in tmp_path/data
        DISCORD_TOKEN="x",
        DISCORD_API_BASE=UNREACHABLE_DISCORD,
        OPS_PORT="0",
    )


def test_run_names_the_ops_port_when_it_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fails_with(
            Exit.CONFIG,
            f"cannot listen on 127.0.0.1:{port} (OPS_HOST, OPS_PORT): address already in use",
            "run",
            tmp_path,
            DISCORD_TOKEN="x",
            DISCORD_API_BASE=UNREACHABLE_DISCORD,
            OPS_PORT=str(port),
        )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SHARD_COUNT": "2", "SHARD_IDS": "[2]"}, "invalid setting SHARD_IDS: shard(s) 2 outside"),
        ({"DB_POOL_MIN": "9", "DB_POOL_MAX": "3"}, "invalid setting DB_POOL_MIN: 9 is above"),
    ],
)
def test_run_checks_settings_before_touching_discord(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    rc, stderr = app(
        "run", tmp_path, DISCORD_TOKEN="x", DISCORD_API_BASE=UNREACHABLE_DISCORD, **env
    )
    assert (rc, stderr.strip().startswith(says)) == (Exit.SETTINGS, True), stderr
    assert the_one_line(stderr).startswith(says)
