"""The hot path's Redis connections (app/coord/redis_direct.py), against the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from redis.exceptions import ResponseError

from app.coord.redis_direct import DirectConnections
from testsupport.keys import delete_keys
from testsupport.waiting import wait_for

KEY = "direct:test:list"
NAME = "direct-test"  # the connections' client name, so that the test kills only them


@pytest.fixture
async def direct(redis_server_url: str, raw_redis: redis.Redis) -> AsyncIterator[DirectConnections]:
    await delete_keys(raw_redis, "direct:test:*")
    client = redis.Redis.from_url(redis_server_url, client_name=NAME)
    connections = DirectConnections(client.connection_pool, timeout=5.0)
    yield connections
    await connections.close()
    await client.aclose()


async def blocked_clients(raw: redis.Redis) -> int:
    return int((await raw.info("clients"))["blocked_clients"])


async def test_commands_go_together_and_their_replies_come_back_in_order(
    direct: DirectConnections,
) -> None:
    replies = await direct.execute(
        [("RPUSH", KEY, "a", "b"), ("LRANGE", KEY, 0, -1), ("EVAL", "return ARGV[1]", 0, "x")]
    )
    assert replies == [2, [b"a", b"b"], b"x"]


async def test_a_connection_cancelled_mid_command_is_never_reused(
    direct: DirectConnections, raw_redis: redis.Redis
) -> None:
    """Reused, it would hand the next caller the reply of the cancelled command."""
    await direct.execute([("PING",)])  # one idle connection, which the BLPOP takes
    waiting = asyncio.create_task(direct.execute([("BLPOP", KEY, 10)]))
    await wait_for(lambda: blocked_clients(raw_redis))
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await wait_for(lambda: _none_blocked(raw_redis))
    await raw_redis.rpush(KEY, "v")
    assert await direct.execute([("LPOP", KEY)]) == [b"v"]


async def _none_blocked(raw: redis.Redis) -> bool:
    return await blocked_clients(raw) == 0


async def test_an_error_reply_raises_and_the_next_call_is_answered(
    direct: DirectConnections,
) -> None:
    with pytest.raises(ResponseError):
        await direct.execute([("EVAL", "return redis.error_reply('no')", 0), ("PING",)])
    assert await direct.execute([("PING",)]) == [b"PONG"]


async def test_connections_killed_by_the_server_are_replaced(
    direct: DirectConnections, raw_redis: redis.Redis
) -> None:
    """As after a Redis restart: every idle connection is stale, and the call still succeeds."""
    await asyncio.gather(*(direct.execute([("PING",)]) for _ in range(3)))
    ours = [c for c in await raw_redis.client_list() if c["name"] == NAME]
    assert len(ours) == 3
    for client in ours:
        await raw_redis.client_kill_filter(_id=client["id"])
    replies = await direct.execute([("SET", "direct:test:k", "1"), ("GET", "direct:test:k")])
    assert replies == [b"OK", b"1"]
