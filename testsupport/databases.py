"""Throwaway databases on a PostgreSQL server: a random name each, dropped when done."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from app.db.postgres import asyncpg_dsn


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    """One asyncpg connection to a database URL (postgres:// or postgresql://), closed on exit."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        yield conn
    finally:
        await conn.close()


async def create_database(server_url: str, prefix: str = "bench") -> str:
    """Create an empty database with a random name on the server; its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    async with connect(server_url) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    """Drop a database made by create_database, closing its sessions."""
    name = url.rpartition("/")[2]
    async with connect(server_url) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
