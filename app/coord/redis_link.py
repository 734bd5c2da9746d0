"""A Redis client with retries under a circuit breaker: without Redis the bot carries on.

redis-py retries each command itself (`Retry`, exponential backoff) on connection errors and
timeouts, on a fresh connection: after a Redis restart every pooled connection is stale, and
the first command on each would otherwise fail although Redis is back. Only when the retries
fail too does the breaker open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.coord.redis_direct import Command, DirectConnections, SharedConnection
from app.ops.logs import Throttle

log = logging.getLogger(__name__)
T = TypeVar("T")
#: While Redis stays away, how often its absence is logged again.
REMIND_EVERY = 60.0

#: Retries of one command after the first attempt (each on a new connection), 50, 100 ms apart.
RETRIES = 2


class RedisUnavailable(Exception):
    """Redis did not answer; the caller falls back to its Redis-free path."""


class RedisLink:
    """One shared client. After a failure calls are skipped for `cooldown` seconds.

    Skipping keeps a dead Redis from adding a connect timeout to every command.
    `on_recover` callbacks run before the first operation after a failure; Redis counts as
    back (and is logged so, once) only when they and the operation succeeded.
    """

    def __init__(self, url: str, cooldown: float = 1.0, timeout: float = 1.0) -> None:
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            health_check_interval=10,
            decode_responses=False,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.025), RETRIES),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        #: The hot path's connections (app/coord/redis_direct.py): one shared by the callers,
        #: and one per round trip for blocking commands.
        self._shared = SharedConnection(self.client.connection_pool, timeout)
        self._direct = DirectConnections(self.client.connection_pool, timeout)
        self.cooldown = cooldown
        self._down_until = 0.0
        #: When the current outage began (None while Redis answers).
        self._down_since: float | None = None
        self._reminder = Throttle(REMIND_EVERY)
        self._recover_hooks: list[Callable[[], Awaitable[None]]] = []

    @property
    def usable(self) -> bool:
        """False while the breaker is open after a recent failure."""
        return time.monotonic() >= self._down_until

    @property
    def down_for(self) -> float | None:
        """Seconds since Redis stopped answering (None while it answers)."""
        return None if self._down_since is None else time.monotonic() - self._down_since

    def on_recover(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` after Redis answers again following a failure."""
        self._recover_hooks.append(hook)

    async def run(self, operation: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """Run one operation against Redis or raise RedisUnavailable."""
        if not self.usable:
            raise RedisUnavailable("redis circuit open")
        try:
            if self._down_since is not None:
                # Before anything is read again, let the caches drop what they may have missed.
                for hook in self._recover_hooks:
                    await hook()
            result = await operation(self.client)
        except (RedisError, OSError) as error:
            self._failed(error)
            raise RedisUnavailable(str(error)) from error
        if self._down_since is not None:
            log.info("redis is back after %.0f s", time.monotonic() - self._down_since)
            self._down_since = None
        return result

    async def direct(self, *commands: Command, blocking: bool = False) -> list[Any]:
        """`commands` in one round trip, outside redis-py's pool; their replies.

        Under the breaker like `run`; for the hot path (app/coord/redis_direct.py). The
        commands share a connection with concurrent callers', unless `blocking` (BLPOP): then
        they have one of their own until the reply.
        """
        connections = self._direct if blocking else self._shared
        return await self.run(lambda _: connections.execute(commands))

    def _failed(self, error: BaseException) -> None:
        """Open the breaker; log the outage once, then a reminder every REMIND_EVERY s."""
        now = time.monotonic()
        self._down_until = now + self.cooldown
        if self._down_since is None:
            self._down_since = now
            self._reminder = Throttle(REMIND_EVERY)
            self._reminder.due()
            log.warning("redis unavailable, falling back: %s", error)
        elif self._reminder.due() is not None:
            log.warning("redis still unavailable after %.0f s: %s", now - self._down_since, error)

    async def close(self) -> None:
        """Close the connection pool and the direct connections."""
        await self._shared.close()
        await self._direct.close()
        await self.client.aclose()


async def stop_tasks(*tasks: asyncio.Task[Any] | None, retry_every: float = 0.5) -> None:
    """Cancel `tasks` and wait until each has ended, cancelling again any that goes on.

    A task in the middle of a Redis command can lose its cancellation: redis-py may turn it
    into a read timeout, which the link reports as Redis away, and the task's loop carries on
    to its next sleep. A single cancel then waits for ever (a shutdown that never ended:
    tests/bot/test_cluster.py, the identify-budget stop).
    """
    running = {task for task in tasks if task is not None and not task.done()}
    while running:
        for task in running:
            task.cancel()
        done, running = await asyncio.wait(running, timeout=retry_every)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: a task's failure on the way out is not news
