"""SIGUSR1 names what every task waits on, and the program carries on."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from app.ops import taskdump
from testsupport.waiting import wait_for


async def parked_forever(started: asyncio.Event, never: asyncio.Event) -> None:
    started.set()
    await never.wait()


async def test_sigusr1_logs_where_each_task_waits(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    started, never = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(parked_forever(started, never), name="stuck-one")
    await started.wait()  # it set this on its way to its own await, where it now is
    taskdump.install(loop)
    try:
        with caplog.at_level(logging.WARNING, logger="app.ops.taskdump"):
            os.kill(os.getpid(), signal.SIGUSR1)
            line = await wait_for(
                lambda: next((m for m in caplog.messages if m.startswith("task stuck-one:")), None)
            )
        assert not task.done()  # dumped, not disturbed
    finally:
        taskdump.uninstall(loop)
        task.cancel()
    assert "parked_forever" in line and "wait (" in line  # the coroutine and what it awaits
    assert any(m.startswith("SIGUSR1: ") for m in caplog.messages)
