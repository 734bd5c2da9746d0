"""A Redis client with a circuit breaker: when Redis is away the bot carries on without it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis did not answer; the caller falls back to its Redis-free path."""


class RedisLink:
    """One shared client. After a failure calls are skipped for `cooldown` seconds.

    Skipping keeps a dead Redis from adding a connect timeout to every command.
    `on_recover` callbacks run before the first operation after a failure; until they
    succeed, Redis counts as still away.
    """

    def __init__(self, url: str, cooldown: float = 1.0, timeout: float = 1.0) -> None:
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            health_check_interval=10,
            decode_responses=False,
        )
        self.cooldown = cooldown
        self._down_until = 0.0
        self._failed = False
        self._recover_hooks: list[Callable[[], Awaitable[None]]] = []

    @property
    def usable(self) -> bool:
        """False while the breaker is open after a recent failure."""
        return time.monotonic() >= self._down_until

    def on_recover(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` after Redis answers again following a failure."""
        self._recover_hooks.append(hook)

    async def run(self, operation: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """Run one operation against Redis or raise RedisUnavailable."""
        if not self.usable:
            raise RedisUnavailable("redis circuit open")
        try:
            if self._failed:
                # Before anything is read again, let the caches drop what they may have missed.
                for hook in self._recover_hooks:
                    await hook()
                self._failed = False
                log.info("redis is back")
            return await operation(self.client)
        except (RedisError, OSError) as error:
            if not self._failed:
                log.warning("redis unavailable, falling back: %s", error)
            self._failed = True
            self._down_until = time.monotonic() + self.cooldown
            raise RedisUnavailable(str(error)) from error

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
