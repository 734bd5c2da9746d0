"""Commands on connections of our own, outside redis-py's connection pool: the hot path's.

redis-py's pool does bookkeeping around every command: a lock, a check that reads the socket
to see that the connection is clean, observability hooks. On this project's machines that is
20-30 us of CPU per command, as much as sending the command and reading its reply. A
transfer's Redis work (its account locks, their release with the leaderboard write-through)
goes through `DirectConnections` instead: one send and one read per round trip, on a
connection nobody else uses meanwhile, with redis-py's own protocol code (packing, hiredis).
The round trip's timeout is one `asyncio.timeout` around it: redis-py's socket timeout would
start a task for every write (`asyncio.wait_for`).

The guarantees of the pool are kept where they matter: a connection that failed, timed out or
was cancelled in the middle of a command is dropped, never reused (its reply could be read by
the next caller); a connection error or timeout closes the idle connections too (after a
Redis restart every one of them is stale) and is retried on a new connection after a backoff,
as the pool's client retries (`RETRIES` times).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Retries of a round trip after the first attempt, each on a new connection.
RETRIES = 2
#: The wait before each retry: 50 ms, then 100 ms (capped at 0.5 s).
BACKOFF = ExponentialBackoff(cap=0.5, base=0.025)
#: Errors after which a round trip is tried again on a new connection (OSError includes the
#: TimeoutError of the round trip's own timeout).
RETRYABLE = (RedisConnectionError, RedisTimeoutError, OSError)

Command = Sequence[Any]


class DirectConnections:
    """Idle connections made with `pool`'s settings, and round trips of commands on them.

    `timeout`: seconds a round trip may take (connecting included) before it counts as failed.
    """

    def __init__(self, pool: ConnectionPool, timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout
        self._idle: list[AbstractConnection] = []

    def _new(self) -> AbstractConnection:
        settings = {**self.pool.connection_kwargs, "socket_timeout": None}
        return self.pool.connection_class(**settings)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` together and read their replies (a pipeline without MULTI).

        Raises what redis-py raises: a reply that is an error (ResponseError), or, once the
        retries are spent, a connection error or timeout.
        """
        for attempt in range(RETRIES + 1):
            conn = self._idle.pop() if self._idle else self._new()
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.send_packed_command(conn.pack_commands(commands))
                    replies = [await conn.read_response() for _ in commands]
            except BaseException as error:
                await _drop(conn)
                if not isinstance(error, RETRYABLE) or attempt == RETRIES:
                    raise
                await self.close()  # the idle ones are as stale (a Redis restart closes all)
                await asyncio.sleep(BACKOFF.compute(attempt + 1))
                continue
            self._idle.append(conn)
            return replies
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def close(self) -> None:
        """Close the idle connections (one in use is dropped when its caller finishes)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await _drop(conn)


async def _drop(conn: AbstractConnection) -> None:
    """Close a connection that must not be used again, whatever state it is in."""
    with contextlib.suppress(Exception):
        await conn.disconnect(nowait=True)
