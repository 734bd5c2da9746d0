"""Waiting on a condition with a timeout, instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


# The value returned is truthy, so never None.
@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T | None]], within: float = 10.0, interval: float = 0.02
) -> T: ...
@overload
async def wait_for(
    predicate: Callable[[], T | None], within: float = 10.0, interval: float = 0.02
) -> T: ...
async def wait_for(
    predicate: Callable[[], Any], within: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll a predicate (plain or async) until it returns a truthy value, or fail after `within`."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
