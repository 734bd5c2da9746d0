"""Members' traffic through an in-process sandbox, and the bot's answers as the sandbox sees them.

The Discord-level benchmarks run the sandbox (`SandboxServer`) inside the benchmark process
and drive it with its in-process `Driver`: an event costs the sandbox one gateway dispatch and
nothing else, where `python -m app sandbox serve` + `RemoteDriver` would add an HTTP request
per command and a long poll per answer, in a third process on the same two cores. What is
measured is then the bot (and the sandbox's gateway and REST work, which a bare discord.py
bot pays too), not the driver.

Answers are seen by one `ReplyWatcher` task: it re-checks every pending command whenever the
sandbox's state changes (the sandbox's change feed), instead of one waiting task per command,
which would wake every waiter on every change.
"""

from __future__ import annotations

import asyncio
import gc
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox import MessageView, SandboxServer, point_discord_at
from sandbox.driver import InteractionHandle
from sandbox.world import Channel, Guild, Member, World
from testsupport.bots import bot_settings

ERROR_MARK = "❌"  # app.bot.errors.ERROR_MARK: every error reply starts with it
_MENTION = re.compile(r"<@!?(\d+)>")


@asynccontextmanager
async def sandbox(world: World, **settings: Any) -> AsyncIterator[SandboxServer]:
    """A started SandboxServer on a free port, discord.py in this process pointed at it."""
    server = SandboxServer(world=world, **settings)
    await server.start()
    point_discord_at(server.rest_base, server.gateway_url)
    try:
        yield server
    finally:
        await server.stop()


async def publish_commands(server: SandboxServer, database_url: str) -> int:
    """Publish the bot's slash commands once (app.bot.runner.publish_commands); how many."""
    from app.bot.runner import publish_commands as publish

    return len(await publish(bot_settings(server, database_url), server.bot_token))


@dataclass(frozen=True, slots=True)
class Seat:
    """Where a simulated member acts: a guild, its #general, and the member."""

    guild: Guild
    channel: Channel
    member: Member

    @property
    def user_id(self) -> int:
        """The member's user id."""
        return self.member.user.id


def seats(world: World) -> list[list[Seat]]:
    """Per guild, every human member sitting in the guild's first text channel."""
    found = []
    for guild in world.guilds.values():
        channel = world.text_channels(guild)[0]
        found.append([Seat(guild, channel, m) for m in guild.members.values() if not m.user.bot])
    return found


class Crowd:
    """The simulated members of every guild of a sandbox, and the watcher of the bot's answers."""

    def __init__(self, server: SandboxServer, watcher: ReplyWatcher, seed: int) -> None:
        self.driver = server.driver
        self.watcher = watcher
        self.rng = random.Random(seed)
        self.by_guild = seats(server.world)
        self.everyone = [s for guild in self.by_guild for s in guild]

    def pair(self) -> tuple[Seat, Seat]:
        """Two different members of a random guild (a sender and a recipient)."""
        guild = self.rng.choice(self.by_guild)
        sender, recipient = self.rng.sample(guild, 2)
        return sender, recipient


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic garbage collection in this process inside the block.

    The sandbox keeps every message, interaction and REST call it saw, so this process holds
    millions of objects after a few minutes of traffic, and a full collection of them paused it
    for 90-600 ms: those pauses showed up as the p99 of whichever step they fell in, although
    the bot had answered on time. So a measured step runs with the collector off, after a
    collection and `gc.freeze()` (what exists is never scanned again); reference counting
    still frees everything acyclic, and the collector is back on between steps.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def kind_of(view: MessageView | None) -> str:
    """An answer's outcome: "ok", "error" (the bot's ❌ replies) or "unanswered"."""
    if view is None:
        return "unanswered"
    return "error" if view.content.startswith(ERROR_MARK) else "ok"


class ReplyWatcher:
    """Futures for the bot's answers: interaction responses, replies and level-up messages.

    Each future resolves to (perf_counter when seen, the answer). Start it before the first
    command and stop it at the end.
    """

    def __init__(self, server: SandboxServer) -> None:
        self.core = server.core
        self.world = server.world
        self.bot_id = server.world.bot.id
        self._interactions: dict[int, tuple[Any, asyncio.Future[Any]]] = {}
        self._by_reference: dict[int, asyncio.Future[Any]] = {}
        self._by_mention: dict[tuple[int, int], asyncio.Future[Any]] = {}
        self._channels: dict[int, int] = {}  # channel id -> next index of message_ids to read
        self._waiting: dict[int, int] = {}  # channel id -> pending message answers
        self._stopping = False
        self._task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        """Start watching."""
        self._task = asyncio.create_task(
            self.core.feed.wait_for(self._probe, 10**9, "the end of the benchmark")
        )

    async def stop(self) -> None:
        """Stop watching; pending futures are cancelled."""
        self._stopping = True
        self.core.changed()
        if self._task is not None:
            await self._task
        for future in [
            *(f for _, f in self._interactions.values()),
            *self._by_reference.values(),
            *self._by_mention.values(),
        ]:
            future.cancel()

    def interaction(self, handle: InteractionHandle) -> asyncio.Future[Any]:
        """The interaction's response (a type 4 callback or a filled-in deferral)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._interactions[handle.id] = (handle.record, future)
        self.core.changed()  # it may have been answered already
        return future

    def reply(self, trigger: MessageView, *, mention: bool = False) -> asyncio.Future[Any]:
        """The bot's message in the trigger's channel that replies to it, or (mention=True)
        the next bot message there that mentions the trigger's author (a level-up)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        channel = self.world.channels[trigger.channel_id]
        if not self._waiting.get(channel.id):
            ids = channel.message_ids
            self._channels[channel.id] = next(
                i for i in range(len(ids) - 1, -1, -1) if ids[i] == trigger.id
            )
        self._waiting[channel.id] = self._waiting.get(channel.id, 0) + 1
        if mention:
            self._by_mention[(channel.id, trigger.author_id)] = future
        else:
            self._by_reference[trigger.id] = future
        future.add_done_callback(lambda _: self._answered(channel.id))
        self.core.changed()
        return future

    def _answered(self, channel_id: int) -> None:
        self._waiting[channel_id] -= 1

    def _probe(self) -> bool | None:
        now = time.perf_counter()
        if self._interactions:
            done = [i for i, (record, _) in self._interactions.items() if record.response]
            for interaction_id in done:
                record, future = self._interactions.pop(interaction_id)
                if not future.done():
                    future.set_result((now, record.response))
        for channel_id, waiting in self._waiting.items():
            if waiting:
                self._scan(channel_id, now)
        return True if self._stopping else None

    def _scan(self, channel_id: int, now: float) -> None:
        channel = self.world.channels[channel_id]
        ids = channel.message_ids
        for index in range(self._channels.get(channel_id, 0), len(ids)):
            msg = self.world.messages[ids[index]]
            if msg.author_id != self.bot_id:
                continue
            future = None
            if msg.reference_id is not None:
                future = self._by_reference.pop(msg.reference_id, None)
            if future is None:
                found = _MENTION.match(msg.content)
                if found:
                    future = self._by_mention.pop((channel_id, int(found.group(1))), None)
            if future is not None and not future.done():
                future.set_result((now, MessageView.of(self.world, msg, self.core.base_url)))
        self._channels[channel_id] = len(ids)


async def answer(future: asyncio.Future[Any], timeout: float) -> MessageView | None:  # noqa: ASYNC109
    """The answer a watcher future resolves to, or None after `timeout` seconds."""
    try:
        _, view = await asyncio.wait_for(future, timeout)
    except TimeoutError:
        return None
    return view
