"""Access to the throwaway PostgreSQL and Redis that scripts/test.sh starts for the suite."""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import asyncpg
import pytest

from app.db.migrate import asyncpg_dsn

T = TypeVar("T")


def pg_base_url() -> str:
    """The server URL given by the harness, or skip the test."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: run the suite with `make test`")
    return url


def redis_url() -> str:
    """The Redis URL given by the harness, or skip the test."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set: run the suite with `make test`")
    return url


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


async def create_database(base_url: str, prefix: str = "t") -> str:
    """Create an empty database with a random name and return its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(asyncpg_dsn(base_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(base_url, name)


async def drop_database(base_url: str, url: str) -> None:
    """Drop a database created by create_database, closing its sessions."""
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(asyncpg_dsn(base_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may stop and start."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary, free_port(), tempfile.mkdtemp(prefix="redis-"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


class RedisServer:
    """A redis-server child process on a fixed loopback port."""

    def __init__(self, binary: str, port: int, workdir: str) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its redis:// URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)  # polling a child process's port, not test synchronisation
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it (its data is gone: it keeps nothing on disk)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


async def wait_for(
    predicate: Callable[[], Awaitable[T] | T], within: float = 10.0, interval: float = 0.02
) -> T:
    """Poll a predicate (plain or async) until it returns a truthy value, or fail after `within`."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
