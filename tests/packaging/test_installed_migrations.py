"""The migrations ship inside the package: a bot installed from its wheel, outside the source
tree (as in the image), migrates a database by itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.db.schema import MIGRATIONS_DIR, shipped_migrations
from tests.conftest import run_in_thread
from tests.services import pg_base_url
from testsupport.bots import bot_env
from testsupport.databases import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_an_installed_bot_migrates_without_the_source_tree(tmp_path: Path) -> None:
    source, wheels, site = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    # What the image's builder stage copies (the build leaves its files there, not here).
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, source], check=True, timeout=300)
    (wheel,) = wheels.glob("guildbot-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True, timeout=300)
    env = bot_env(PYTHONPATH=str(site))  # the installed copy, not this checkout
    where = subprocess.run(
        [sys.executable, "-c", "from app.db.schema import MIGRATIONS_DIR; print(MIGRATIONS_DIR)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site)

    base = pg_base_url()
    url = run_in_thread(create_database(base, "installed"))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "app", "migrate"],
            env={**env, "DATABASE_URL": url},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        run_in_thread(drop_database(base, url))
    expected = shipped_migrations(MIGRATIONS_DIR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"applied {len(expected)} migration(s): {', '.join(expected)}"
