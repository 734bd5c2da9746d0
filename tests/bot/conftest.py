"""Fixtures for end-to-end bot tests: a sandbox per module, the bot in-process against it, on
the real PostgreSQL and Redis of the test harness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.bot.client import GuildBot
from sandbox import SandboxServer
from tests.bot.cluster import Cluster
from tests.bot.harness import REPLY_TIMEOUT, Harness, bot_settings, start_test_bot
from tests.bot.world import community_world
from tests.conftest import Backend


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
async def h(sandbox: SandboxServer, module_bot: GuildBot, pg: object) -> AsyncIterator[Harness]:
    """The harness with empty tables and an empty Redis; the bot idle again after the test."""
    yield Harness(sandbox, module_bot, next(iter(sandbox.world.guilds.values())))
    await module_bot.inflight.wait_idle(REPLY_TIMEOUT)


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest,
    sandbox: SandboxServer,
    pg: Backend,
    redis_server_url: str,
    tmp_path: Path,
) -> AsyncIterator[Cluster]:
    """Bot processes against the module's sandbox, with the module's POD_ENV."""
    group = Cluster(sandbox, pg, redis_server_url, tmp_path, **request.module.POD_ENV)
    yield group
    await group.close()
