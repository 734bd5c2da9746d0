"""Fixtures for end-to-end bot tests: a sandbox per module, the bot in-process against it, on
the real PostgreSQL and Redis of the test harness."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.bot.client import GuildBot
from app.sandbox import SandboxServer
from tests.bot.harness import Harness, bot_settings, start_test_bot
from tests.bot.world import community_world


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    """A sandbox with one community guild, for one test module."""
    server = SandboxServer(world=community_world(), identify_window=0.01, interaction_deadline=10)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def module_bot(
    sandbox: SandboxServer, pg_url: str, redis_server_url: str
) -> AsyncIterator[GuildBot]:
    """The bot, started once per module (PostgreSQL + Redis)."""
    bot = await start_test_bot(bot_settings(sandbox, pg_url, redis_server_url))
    yield bot
    await bot.close()


@pytest.fixture
async def h(sandbox: SandboxServer, module_bot: GuildBot, pg: object) -> Harness:
    """The harness with empty tables and an empty Redis."""
    return Harness(sandbox, module_bot, next(iter(sandbox.world.guilds.values())))
