"""Access to the throwaway PostgreSQL and Redis that scripts/test.sh starts for the suite."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from testsupport.servers import PrivateRedis


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
    async with PrivateRedis() as server:
        yield server
