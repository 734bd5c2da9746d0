"""A sandbox with two community guilds and the web console signing in with it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox import SandboxServer
from tests.bot.world import community_world
from tests.conftest import Backend
from tests.web.console import Visitor, Web, running_console


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    """Guild 0 and Guild 1, the same people in both."""
    server = SandboxServer(world=community_world([(0, 1), (0, 1)], members=6))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def web(sandbox: SandboxServer, pg: Backend, redis_server_url: str) -> AsyncIterator[Web]:
    """The console over empty tables (authorization cached for 60 s, as in production)."""
    async with running_console(sandbox, redis_server_url) as running:
        yield running


@pytest.fixture
async def visitor(web: Web) -> AsyncIterator[Visitor]:
    """A signed-out browser."""
    browser = Visitor(web)
    yield browser
    await browser.close()
