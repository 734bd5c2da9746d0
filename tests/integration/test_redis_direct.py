"""The hot path's Redis connections (app/coord/redis_direct.py), against the real Redis: one
per round trip, and one shared by concurrent callers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from app.coord.redis_direct import DirectConnections, SharedConnection
from app.coord.redis_link import RedisLink
from app.ops.event_loop import loop_factory
from testsupport.keys import delete_keys
from testsupport.servers import PrivateRedis
from testsupport.waiting import wait_for

KEY = "direct:test:list"
NAME = "direct-test"  # the connections' client name, so that the test kills only them


@pytest.fixture
async def pool(redis_server_url: str, raw_redis: redis.Redis) -> AsyncIterator[ConnectionPool]:
    """The settings the connections are made with; no test key left from an earlier test."""
    await delete_keys(raw_redis, "direct:test:*")
    client = redis.Redis.from_url(redis_server_url, client_name=NAME)
    yield client.connection_pool
    await client.aclose()


@pytest.fixture
async def direct(pool: ConnectionPool) -> AsyncIterator[DirectConnections]:
    connections = DirectConnections(pool, timeout=5.0)
    yield connections
    await connections.close()


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


# -- one connection shared by concurrent callers -------------------------------------------


@pytest.fixture
async def shared(pool: ConnectionPool) -> AsyncIterator[SharedConnection]:
    connection = SharedConnection(pool, timeout=5.0)
    yield connection
    await connection.close()


async def ours(raw: redis.Redis) -> list[dict[str, Any]]:
    """The test's connections, as Redis lists them."""
    return [c for c in await raw.client_list() if c["name"] == NAME]


async def test_concurrent_callers_share_one_connection_and_get_their_own_replies(
    shared: SharedConnection, raw_redis: redis.Redis
) -> None:
    async def count(i: int) -> list[Any]:
        key = f"direct:test:n{i % 7}"
        return await shared.execute([("INCRBY", key, i), ("EVAL", "return ARGV[1]", 0, i)])

    replies = await asyncio.gather(*(count(i) for i in range(100)))
    assert [echo for _, echo in replies] == [str(i).encode() for i in range(100)]
    totals = {int(await raw_redis.get(f"direct:test:n{k}") or 0) for k in range(7)}
    assert totals == {sum(i for i in range(100) if i % 7 == k) for k in range(7)}
    assert len(await ours(raw_redis)) == 1


async def test_an_error_reply_fails_its_caller_only(shared: SharedConnection) -> None:
    failing = shared.execute([("PING",), ("EVAL", "return redis.error_reply('no')", 0)])
    results = await asyncio.gather(failing, shared.execute([("PING",)]), return_exceptions=True)
    assert isinstance(results[0], ResponseError) and results[1] == [b"PONG"]


async def test_a_caller_cancelled_after_its_write_does_not_take_the_next_reply(
    shared: SharedConnection, raw_redis: redis.Redis
) -> None:
    """The reply to the cancelled command is read and dropped: the next caller gets its own,
    on the same connection."""
    waiting = asyncio.create_task(shared.execute([("BLPOP", KEY, 5)]))
    await wait_for(lambda: blocked_clients(raw_redis))  # written: Redis is blocked on it
    [before] = await ours(raw_redis)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    behind = asyncio.create_task(shared.execute([("ECHO", "mine")]))
    await raw_redis.rpush(KEY, "v")  # answers the cancelled BLPOP, then the ECHO
    assert await behind == [b"mine"]
    assert await raw_redis.llen(KEY) == 0  # the BLPOP did take the element
    assert [c["id"] for c in await ours(raw_redis)] == [before["id"]]


async def test_a_killed_connection_is_replaced_and_the_call_retried(
    shared: SharedConnection, raw_redis: redis.Redis
) -> None:
    assert await shared.execute([("PING",)]) == [b"PONG"]
    [client] = await ours(raw_redis)
    await raw_redis.client_kill_filter(_id=client["id"])
    assert await shared.execute([("SET", "direct:test:k", "1"), ("GET", "direct:test:k")]) == [
        b"OK",
        b"1",
    ]


async def test_a_late_reply_closes_the_connection_for_every_caller(
    pool: ConnectionPool, raw_redis: redis.Redis
) -> None:
    """Replies come in order: one that is late holds up every one written after it."""
    shared = SharedConnection(pool, timeout=0.2)
    try:
        stuck = shared.execute([("BLPOP", KEY, 1)])
        behind = shared.execute([("PING",)])
        results = await asyncio.gather(stuck, behind, return_exceptions=True)
        assert all(isinstance(r, TimeoutError | RedisConnectionError) for r in results), results
        assert await shared.execute([("PING",)]) == [b"PONG"]  # on a new connection
        await wait_for(lambda: _only_one(raw_redis))
    finally:
        await shared.close()


async def _only_one(raw: redis.Redis) -> bool:
    return len(await ours(raw)) == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_shared_connection_speaks_tls(loop: str) -> None:
    """rediss://: the protocol the shared connection puts in place sits behind an SSL transport
    (asyncio's or uvloop's, as the bot runs), and replies larger than a TLS record (16 KiB)
    reach it in pieces; concurrent callers each get their own reply, and a blocking command
    its own connection."""
    big = b"x" * 100_000

    async def scenario() -> None:
        async with PrivateRedis(tls=True) as server:
            link = RedisLink(server.url)
            try:
                calls = [link.direct(("SET", f"k{i}", big), ("GET", f"k{i}")) for i in range(20)]
                replies = await asyncio.gather(*calls)
                assert [reply[1] for reply in replies] == [big] * 20
                transport = link._shared._transport  # the one shared connection, encrypted
                assert transport is not None and transport.get_extra_info("ssl_object") is not None
                assert await link.direct(("RPUSH", KEY, "a")) == [1]
                assert await link.direct(("BLPOP", KEY, 1), blocking=True) == [[KEY.encode(), b"a"]]
            finally:
                await link.close()

    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(scenario())
