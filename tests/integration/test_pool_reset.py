"""A pooled PostgreSQL connection is given back without asyncpg's reset query (one round trip
per query saved, app/db/connect.py: keep_session), and still without an open transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tortoise import connections

from app.db.connect import Database
from tests.services import pg_base_url
from testsupport.databases import create_database, drop_database

pytestmark = pytest.mark.slow


@pytest.fixture
async def one_connection() -> AsyncIterator[Database]:
    """A database whose pool holds a single connection, so every query reuses it."""
    base = pg_base_url()
    url = await create_database(base, "reset")
    database = await Database.open(url, pool_min=1, pool_max=1)
    try:
        yield database
    finally:
        await database.close()
        await drop_database(base, url)


async def test_a_released_connection_gets_no_reset_query(one_connection: Database) -> None:
    """RESET ALL would have put the setting back: it is still there on the next query."""
    with one_connection.context:
        conn = connections.get("default")
        await conn.execute_script("SET application_name = 'kept'")
        rows = await conn.execute_query_dict("SELECT current_setting('application_name') AS v")
    assert rows == [{"v": "kept"}]


async def test_a_transaction_left_open_is_still_rolled_back(one_connection: Database) -> None:
    with one_connection.context:
        conn = connections.get("default")
        await conn.execute_script("CREATE TABLE written (x int)")
        pool = conn._pool
        raw = await pool.acquire()
        await raw.execute("BEGIN")
        await raw.execute("INSERT INTO written VALUES (1)")
        await pool.release(raw)
        rows = await conn.execute_query_dict("SELECT count(*) AS n FROM written")
    assert rows == [{"n": 0}]
