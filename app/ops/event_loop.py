"""The event loop a process runs on: uvloop's or asyncio's own (EVENT_LOOP, `bench --loop`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop `name` ("uvloop" or "asyncio") as asyncio.Runner takes it (None: asyncio's).

    Where uvloop is not installed (it has no Windows build), says so and gives asyncio's.
    """
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop is not installed: running on asyncio's loop")
        return None
    return uvloop.new_event_loop


def running_loop_name() -> str:
    """The name of the loop the calling code runs on: "uvloop" or "asyncio"."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]
