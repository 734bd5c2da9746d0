"""Retry a unit of work on transient database failures, within the deadline of its request.

Only work that is safe to repeat goes through here: every money and case operation carries an
idempotency key, so a retry after a commit whose acknowledgement was lost replays the first
result instead of applying twice.

Work outside any request (gateway events, background tasks) is tried up to BACKGROUND_ATTEMPTS
times, each attempt as long as it takes. A command's work is retried until its deadline
(app/ops/deadline.py: its reply must still be deliverable). Past it, nothing more is tried
and nothing commits: the caller gets `DeadlineExceeded` at once, and an attempt still running
(a query hanging on a stalled server) is abandoned: no longer waited for, and rolled back by
`transaction` when it reaches its end, instead of committed. Only a COMMIT already sent is
waited for, as its outcome decides the answer. The work must make its writes inside
`transaction()`.

Abandoned attempts are not cancelled: Tortoise 1.1 loses a pooled connection, left inside an
open transaction, when a task is cancelled during BEGIN (its connection is taken before BEGIN
and only given back by the context's exit, which a failed entry never runs).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from tortoise.transactions import in_transaction

from app.ops import deadline as deadlines
from app.ops.deadline import Deadline, DeadlineExceeded
from app.ops.logs import Throttle

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
#: How often work outside any request is tried (a few seconds of backoff in all, as before
#: deadlines).
BACKGROUND_ATTEMPTS = 8
#: During an outage every command retries: one line per interval says so.
_retries_logged = Throttle(10.0)
#: Attempts abandoned at the deadline, kept until they have rolled back.
_abandoned: set[asyncio.Task[Any]] = set()


@dataclass
class _Attempt:
    """One try of the work: its deadline, whether it was abandoned, whether it is committing.

    The deadline is None outside any request.
    """

    deadline: Deadline | None
    abandoned: bool = False
    committing: bool = False


_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "retry_attempt", default=None
)


def is_transient(error: BaseException) -> bool:
    """True when the error, or what caused it, is a transient database failure."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, DeadlineExceeded):
            return False
        if isinstance(cause, TRANSIENT):
            return True
        cause = cause.__cause__
    return False


@asynccontextmanager
async def transaction() -> AsyncIterator[Any]:
    """`in_transaction()` that commits only within the deadline of the work in hand.

    At the end of the block, if the attempt was abandoned or its deadline has passed, it rolls
    back and raises `DeadlineExceeded`; otherwise the attempt is marked as committing, and
    `retrying` waits for the COMMIT. Use it for the outermost transaction of work run by
    `retrying`.
    """
    async with in_transaction() as connection:
        yield connection
        attempt = _attempt.get()
        if attempt is not None:
            late = attempt.deadline is not None and attempt.deadline.remaining() <= 0
            if attempt.abandoned or late:
                raise DeadlineExceeded("the deadline passed before the commit")
            attempt.committing = True


def one_statement() -> int:
    """Ready the attempt to send its work as one statement that commits itself.

    Once sent, that statement is the COMMIT: `retrying` waits for it like one. It may wait for
    row locks only as long as the deadline leaves: the milliseconds returned (0: no deadline,
    no limit), for the statement's `lock_timeout`. `DeadlineExceeded` when none is left.
    """
    attempt = _attempt.get()
    if attempt is None:
        return 0
    if attempt.abandoned:
        raise DeadlineExceeded("the deadline passed before the statement was sent")
    left_ms = 0
    if attempt.deadline is not None:
        left_ms = int(attempt.deadline.remaining() * 1000)
        if left_ms <= 0:
            raise DeadlineExceeded("the deadline passed before the statement was sent")
    attempt.committing = True
    return left_ms


async def retrying(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`, retrying transient failures with jittered backoff until the deadline.

    Each attempt runs in its own task, in a copy of the caller's context as it was before the
    first attempt: Tortoise 1.1 leaves a task bound to a dead transaction when BEGIN itself
    fails (its connection is set before BEGIN, and never reset), and a retry in that task
    would fail the same way however healthy the database is again.
    """
    deadline = deadlines.current()
    clean = contextvars.copy_context()
    delay = 0.01
    attempts = 0
    while True:
        if deadline is not None and deadline.remaining() <= 0:
            raise DeadlineExceeded(f"no time left for the database work after {attempts} try(s)")
        attempts += 1
        state = _Attempt(deadline)
        context = clean.copy()
        context.run(_attempt.set, state)
        try:
            return await _within_deadline(asyncio.create_task(_call(work), context=context), state)
        except Exception as error:
            if not is_transient(error) or (deadline is None and attempts == BACKGROUND_ATTEMPTS):
                raise
            held = _retries_logged.due()
            if held is not None:
                log.warning(
                    "transient database error, retrying (attempt %d; %d other retries since"
                    " the last such line): %s",
                    attempts,
                    held,
                    error,
                )
        pause = delay * (0.5 + random.random())
        if deadline is not None and deadline.remaining() <= pause:
            raise DeadlineExceeded(f"the database did not recover within {attempts} try(s)")
        await asyncio.sleep(pause)
        delay = min(delay * 3, 2.0)


async def _within_deadline(task: asyncio.Task[T], state: _Attempt) -> T:
    """The attempt's result; abandoned at the deadline unless its COMMIT was already sent."""
    left = None if state.deadline is None else max(0.0, state.deadline.remaining())
    try:
        await asyncio.wait({task}, timeout=left)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.done():
        return task.result()
    if state.committing:  # the outcome of the COMMIT decides: wait for it
        return await asyncio.shield(task)
    state.abandoned = True  # it rolls back when it reaches its end (`transaction`)
    _abandoned.add(task)
    task.add_done_callback(_forget)
    raise DeadlineExceeded("the deadline passed during the database work")


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned attempt ended with %r", task.exception())


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
