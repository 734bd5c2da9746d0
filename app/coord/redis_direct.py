"""Commands on connections of our own, outside redis-py's connection pool: the hot path's.

redis-py's pool does bookkeeping around every command: a lock, a check that reads the socket
to see that the connection is clean, observability hooks. On this project's machines that is
20-30 us of CPU per command, as much as sending the command and reading its reply. The
per-command Redis work (account locks and their release with the leaderboard write-through,
cooldowns, reply claims, the REST budget, leaderboard reads) goes through `SharedConnection`
instead, with redis-py's own protocol code (packing, hiredis):

- Concurrent callers share **one connection**: each writes its commands at once (a
  transport's write never waits, so commands never interleave), and the replies are parsed
  in the socket's own callback (hiredis) and handed to each caller in the order written. A
  caller wakes as soon as its reply is in, with no stream reader, no task and no connection
  checkout in between. redis-py does the connection's handshake (AUTH, SELECT, the client's
  name); then the transport's protocol is replaced by `_Replies`. Measured in turns, 8
  callers taking and releasing account locks: about 10,000 holds/s at 90 us of client CPU
  each, against 8,000 at 120 us on a connection per round trip (bench/redis_path.py).
- A caller that is cancelled or times out never desynchronises it: cancelled while the
  connection is made, it writes nothing; the reply to a command already written is read and
  dropped. A reply later
  than the timeout means the connection (or Redis) is stuck: it is closed and every caller
  waiting on it fails, as a pooled connection would be dropped.

A blocking command (a lock waiter's BLPOP) would hold every other caller up: those go through
`DirectConnections`, one connection per round trip, never shared meanwhile. A connection
that failed, timed out or was cancelled in the middle of a command is dropped, never reused
(its reply could be read by the next caller).

Either way a connection error or timeout is retried on a new connection after a backoff, as
the pool's client retries (`RETRIES` times); after a Redis restart every idle connection is
as stale, so they are closed too. The round trip's timeout is one `asyncio.timeout` around
it: redis-py's socket timeout would start a task for every write (`asyncio.wait_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
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

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` together and read their replies (a pipeline without MULTI).

        Raises what redis-py raises: a reply that is an error (ResponseError), or, once the
        retries are spent, a connection error or timeout.
        """
        # Before a retry the idle connections are closed: after a Redis restart all are stale.
        return await retrying(lambda: self._once(commands), self.close)

    async def _once(self, commands: Sequence[Command]) -> list[Any]:
        conn = self._idle.pop() if self._idle else _new(self.pool)
        try:
            async with asyncio.timeout(self.timeout):
                await conn.send_packed_command(conn.pack_commands(commands))
                replies = [await conn.read_response() for _ in commands]
        except BaseException:
            await _drop(conn)
            raise
        self._idle.append(conn)
        return replies

    async def close(self) -> None:
        """Close the idle connections (one in use is dropped when its caller finishes)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await _drop(conn)


class SharedConnection:
    """One connection shared by concurrent callers, its replies read as they arrive.

    A caller's commands are written at once (a transport's write never waits, so two callers'
    commands never interleave). The replies are parsed in the socket's own callback (hiredis,
    `_Replies`) and handed to each caller in the order written, so a caller wakes as soon as
    its reply is in, as on a connection of its own.

    `timeout`: seconds a caller waits for its replies (connecting included) before the
    connection counts as stuck.
    """

    def __init__(self, pool: ConnectionPool, timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout
        self._conn: AbstractConnection | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._connecting: asyncio.Task[None] | None = None
        #: Written and awaiting replies, in order: (how many replies, future, replies so far).
        self._sent: deque[tuple[int, asyncio.Future[list[Any]], list[Any]]] = deque()

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Like `DirectConnections.execute`, sharing the connection with concurrent callers."""
        # A failure closed the connection already; the retry's write opens a new one.
        return await retrying(lambda: self._once(commands), _nothing)

    async def _once(self, commands: Sequence[Command]) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.timeout):
                transport = self._transport or await self._connected()
                assert self._conn is not None
                packed = b"".join(self._conn.pack_commands(commands))
                self._sent.append((len(commands), future, []))
                try:
                    transport.write(packed)
                except Exception as error:  # closing already: every caller waiting retries
                    self._fail(RedisConnectionError(f"could not write: {error}"))
                return await future
        except TimeoutError:
            self._fail(RedisTimeoutError("no reply within the round trip's timeout"))
            raise

    async def _connected(self) -> asyncio.WriteTransport:
        """Connect once for every caller waiting (redis-py's handshake), then read ourselves."""
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._connect())
        try:
            await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None
        assert self._transport is not None
        return self._transport

    async def _connect(self) -> None:
        conn = _new(self.pool)
        await conn.connect()  # type: ignore[no-untyped-call]
        writer = conn._writer  # the handshake done, the socket is read by `_Replies` from now on
        assert writer is not None
        transport = writer.transport
        transport.set_protocol(_Replies(self, transport))
        self._conn, self._transport = conn, transport

    def reply(self, transport: asyncio.BaseTransport, reply: Any) -> None:
        """A reply arrived: it answers the oldest command still awaiting one."""
        if transport is not self._transport:
            return  # a connection given up already
        if not self._sent:
            self._fail(RedisConnectionError("a reply that no command was waiting for"))
            return
        count, future, replies = self._sent[0]
        replies.append(reply)
        if len(replies) == count:
            self._sent.popleft()
            if not future.done():  # else its caller was cancelled or gave up: dropped
                _settle(future, replies)

    def lost(self, transport: asyncio.BaseTransport, error: BaseException) -> None:
        """The connection broke (or spoke nonsense): every caller waiting on it fails."""
        if transport is self._transport:
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        """Close the connection; every caller waiting on it gets a connection error."""
        transport, self._transport, self._conn = self._transport, None, None
        waiting = [future for _, future, _ in self._sent]
        self._sent.clear()
        failure = error if isinstance(error, RETRYABLE) else RedisConnectionError(str(error))
        for future in waiting:
            if not future.done():
                future.set_exception(failure)
        if transport is not None:
            transport.close()

    async def close(self) -> None:
        """Close the connection (callers still waiting on it fail)."""
        self._fail(RedisConnectionError("closed"))


class _Replies(asyncio.Protocol):
    """Parses what Redis sends (hiredis) and gives each reply to its `SharedConnection`."""

    def __init__(self, owner: SharedConnection, transport: asyncio.BaseTransport) -> None:
        self.owner, self.transport = owner, transport
        self.parser = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed(data)
            while (reply := self.parser.gets()) is not False:
                self.owner.reply(self.transport, reply)
        except InvalidResponse as error:
            self.owner.lost(self.transport, RedisConnectionError(f"unreadable reply: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self.transport, exc or RedisConnectionError("closed by the server"))


def _settle(future: asyncio.Future[list[Any]], replies: list[Any]) -> None:
    """The replies, or the first error reply among them raised."""
    error = next((r for r in replies if isinstance(r, ResponseError)), None)
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(replies)


async def retrying(
    attempt: Callable[[], Awaitable[list[Any]]], before_retry: Callable[[], Awaitable[None]]
) -> list[Any]:
    """`attempt()`, again after a connection error or timeout: `before_retry()`, a backoff."""
    for number in range(RETRIES + 1):
        try:
            return await attempt()
        except RETRYABLE:
            if number == RETRIES:
                raise
            await before_retry()
            await asyncio.sleep(BACKOFF.compute(number + 1))
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _nothing() -> None:
    return None


def _new(pool: ConnectionPool) -> AbstractConnection:
    """A connection with `pool`'s settings, without socket timeout (the caller times it)."""
    return pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})


async def _drop(conn: AbstractConnection) -> None:
    """Close a connection that must not be used again, whatever state it is in."""
    with contextlib.suppress(Exception):
        await conn.disconnect(nowait=True)
