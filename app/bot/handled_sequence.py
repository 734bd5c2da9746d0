"""The sequence a shard's session is saved at: the last event it finished handling.

Every second a shard's session is saved so that, when its process is killed, the next owner
RESUMEs it and Discord replays what came after the saved sequence. Saving the last sequence
*received* loses every command the killed process had received and not finished: its message
is past the saved sequence, so it is never replayed, never answered, and its effect, if it had
committed, has no answer. So the saved sequence is one below the oldest MESSAGE_CREATE or
INTERACTION_CREATE still being handled. A replayed command that had been answered is answered
once: its effect by its idempotency key, its reply by app/bot/replies.py.

"Being handled" means a task discord.py created while parsing the event (a listener, the
command tree's invoker, a view's callback) is still running; they are seen through the event
loop's task factory. Tasks those start later are not counted (a view's timeout would hold the
mark for minutes), nor is an event held for a guild still loading (app/bot/lazy_guilds.py), and
a mark older than MAX_HOLD is let go: a command that old is past its deadline, not run again.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from discord.ext import commands

from app.bot import discord_internals as internals
from app.coord.shard_plan import shard_for_guild

#: Gateway events that start commands.
COMMAND_EVENTS = ("MESSAGE_CREATE", "INTERACTION_CREATE")
#: A mark is let go this long after its event arrived, whether or not it was handled.
MAX_HOLD = 60.0


@dataclass
class _Mark:
    """One command event being handled: its session, sequence and running tasks."""

    shard_id: int
    session_id: str
    sequence: int
    since: float
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


#: The mark of the event being parsed right now (parsing is synchronous: one at a time).
_parsing: _Mark | None = None


class HandledSequence:
    """Per shard, the events still being handled and the sequence below the oldest of them."""

    def __init__(self, bot: commands.AutoShardedBot, clock: Callable[[], float] = time.monotonic):
        self.bot = bot
        self.clock = clock
        self._marks: dict[int, dict[int, _Mark]] = {}

    def install(self) -> None:
        """Watch the command events of every shard from now on (once per bot)."""
        _watch_tasks(asyncio.get_running_loop())
        internals.wrap_parsers(self.bot, COMMAND_EVENTS, self._marking)

    def through(self, shard_id: int, session_id: str, received: int) -> int:
        """The sequence to save for a shard whose session has received up to `received`."""
        marks = self._marks.get(shard_id, {})
        now = self.clock()
        for sequence, mark in list(marks.items()):
            if mark.session_id != session_id or now - mark.since > MAX_HOLD:
                del marks[sequence]
        return min(marks, default=received + 1) - 1

    def _marking(self, _event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def handle(data: Any) -> None:
            global _parsing
            mark = self._open(data)
            if mark is None:
                parse(data)
                return
            _parsing = mark
            try:
                parse(data)
            finally:
                _parsing = None
            if mark.tasks:
                self._marks.setdefault(mark.shard_id, {})[mark.sequence] = mark
                for task in mark.tasks:
                    task.add_done_callback(functools.partial(self._finished, mark))

        return handle

    def _open(self, data: Any) -> _Mark | None:
        raw = data.get("guild_id") if isinstance(data, dict) else None
        if raw is None:
            return None  # direct messages: no guild, no command of ours
        shard_id = shard_for_guild(int(raw), self.bot.shard_count or 1)
        shard = internals.shards_of(self.bot).get(shard_id)
        if shard is None:
            return None
        session_id, sequence, _ = internals.session_of(shard)
        if session_id is None or sequence is None:
            return None
        return _Mark(shard_id, session_id, sequence, self.clock())

    def _finished(self, mark: _Mark, task: asyncio.Task[Any]) -> None:
        mark.tasks.discard(task)
        marks = self._marks.get(mark.shard_id, {})
        if not mark.tasks and marks.get(mark.sequence) is mark:
            del marks[mark.sequence]


def _watch_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Make `loop` add every task created while an event is parsed to that event's mark."""
    previous = loop.get_task_factory()
    if getattr(previous, "marks_tasks", False):
        return

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        if _parsing is not None and isinstance(task, asyncio.Task):
            _parsing.tasks.add(task)
        return task

    factory.marks_tasks = True  # type: ignore[attr-defined]
    loop.set_task_factory(factory)  # type: ignore[arg-type]  # typeshed omits `context=`
