"""Retry a unit of work on transient database failures.

Only work that is safe to repeat goes through here: every money and case operation carries an
idempotency key, so a retry after a commit whose acknowledgement was lost replays the first
result instead of applying twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock detected
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    ConnectionError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """True when the error, or what caused it, is a transient database failure."""
    while error is not None:
        if isinstance(error, TRANSIENT):
            return True
        error = error.__cause__  # type: ignore[assignment]
    return False


async def retrying(work: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """Run `work`, retrying transient failures with jittered exponential backoff (~10 s total).

    Each attempt runs in its own task, in a copy of the caller's context as it was before the
    first attempt: Tortoise 1.1 leaves a task bound to a dead transaction when BEGIN itself
    fails (its connection is set before BEGIN, and never reset), and a retry in that task
    would fail the same way however healthy the database is again.
    """
    clean = contextvars.copy_context()
    delay = 0.01
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.create_task(_call(work), context=clean.copy())
        except Exception as error:
            if attempt == attempts or not is_transient(error):
                raise
            log.warning("transient database error (attempt %d): %s", attempt, error)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 3, 2.0)
    raise AssertionError("unreachable")


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
