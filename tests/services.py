"""Access to the throwaway PostgreSQL and Redis that scripts/test.sh starts for the suite."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest

from bench.services import PrivateRedis
from bench.services import private_redis as bench_private_redis

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


@asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A Redis server of this test's own, which the test may stop and start (on one port)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    async with bench_private_redis() as server:
        yield server


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
