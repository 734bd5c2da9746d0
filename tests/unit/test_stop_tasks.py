"""stop_tasks ends a task even when it loses a cancellation (app/coord/redis_link.py)."""

from __future__ import annotations

import asyncio

from app.coord.redis_link import stop_tasks


async def test_a_task_that_swallows_its_first_cancel_is_cancelled_again() -> None:
    swallowed = asyncio.Event()

    async def loop_that_loses_a_cancel() -> None:
        try:
            await asyncio.Event().wait()  # as inside a Redis command
        except asyncio.CancelledError:
            swallowed.set()  # turned into "Redis away" and carried on
        while True:
            await asyncio.Event().wait()  # the loop's next sleep

    task = asyncio.create_task(loop_that_loses_a_cancel())
    await asyncio.sleep(0)  # let it start
    await asyncio.wait_for(stop_tasks(task, None, retry_every=0.05), timeout=5)
    assert swallowed.is_set() and task.cancelled()


async def test_finished_or_failed_tasks_are_waited_without_raising() -> None:
    async def fail() -> None:
        raise RuntimeError("on the way out")

    failed = asyncio.create_task(fail())
    await asyncio.sleep(0)
    await stop_tasks(failed)
    assert failed.done()
