"""/readyz asks the database for its schema, not only for an answer: a database with no tables,
or behind the head migration, is a 503 that says so."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from app.config import Settings
from app.db.migrate import run_migrations
from app.db.schema import MIGRATIONS_DIR
from app.ops.http import OpsServer, Probes
from app.services import Services
from tests.services import pg_base_url
from testsupport.databases import create_database, drop_database

pytestmark = pytest.mark.slow


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    base = pg_base_url()
    url = await create_database(base, "ready")
    yield url
    await drop_database(base, url)


async def readyz(services: Services) -> tuple[int, str]:
    """(status, body) of /readyz for a pod that serves its shards, over `services`."""
    ops = OpsServer(Probes(serving=lambda: None, database=services.database_problem), port=0)
    await ops.start()
    try:
        url = f"http://127.0.0.1:{ops.port}/readyz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    finally:
        await ops.stop()


async def test_readyz_wants_the_head_migration(empty_db: str, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, database_url=empty_db)
    services = await Services.open(settings)
    try:
        status, body = await readyz(services)
        assert status == 503
        assert body == "not ready: database: it has no tables: run `python -m app migrate` first\n"
        await run_migrations(empty_db)
        assert await readyz(services) == (200, "ready\n")
    finally:
        await services.close()

    newer = tmp_path / "newer"  # the code of a later release, its migration not yet applied
    shutil.copytree(MIGRATIONS_DIR, newer)
    (newer / "models" / "99_20300101000000_later.py").write_text("# a later release's\n")
    services = await Services.open(settings.model_copy(update={"migrations_dir": newer}))
    try:
        status, body = await readyz(services)
        assert status == 503 and "it lacks 1 migration(s) (99_20300101000000_later.py)" in body
    finally:
        await services.close()
