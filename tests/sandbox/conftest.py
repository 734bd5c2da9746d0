"""Fixtures for sandbox tests: a server, an in-process tiny bot, raw gateway clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sandbox_helpers import RawGateway, Rest, make_server
from tiny_bot import TinyBot, start_bot

from sandbox import SandboxServer


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    srv = make_server()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server: SandboxServer) -> AsyncIterator[TinyBot]:
    client = await start_bot(server.rest_base, server.gateway_url)
    yield client
    await client.close()


@pytest.fixture
async def raw_clients() -> AsyncIterator[list[RawGateway]]:
    """Collects RawGateway clients and closes them after the test."""
    clients: list[RawGateway] = []
    yield clients
    for client in clients:
        await client.close()


@pytest.fixture
async def rest(server: SandboxServer) -> AsyncIterator[Rest]:
    """Plain HTTP calls to ``server``'s REST API."""
    async with aiohttp.ClientSession() as session:
        yield Rest(server, session)
