"""SIGUSR1 logs every asyncio task's stack: what a pod that stopped progressing is waiting on.

py-spy shows threads, not coroutines: a bot whose loop is idle while one of its tasks waits
forever looks healthy there. `kubectl exec POD -- kill -USR1 1` writes one WARNING line per
task with the chain of awaits it is parked in, and the bot carries on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import traceback

log = logging.getLogger(__name__)


def task_stack(task: asyncio.Task[object]) -> str:
    """Where `task` is suspended: its await chain, innermost last, as one line."""
    frames: list[str] = []
    coro: object = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        summary = traceback.extract_stack(frame, limit=1)[-1]
        frames.append(f"{summary.name} ({summary.filename}:{summary.lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " | ".join(frames) or "(not started or finished)"


def dump_tasks(reason: str = "SIGUSR1") -> None:
    """Log the stack of every task of the running loop, under `reason`."""
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    log.warning("%s: %d task(s)", reason, len(tasks))
    for task in tasks:
        log.warning("task %s: %s", task.get_name(), task_stack(task))


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Dump the tasks on SIGUSR1."""
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)


def uninstall(loop: asyncio.AbstractEventLoop) -> None:
    """Stop handling SIGUSR1."""
    loop.remove_signal_handler(signal.SIGUSR1)
