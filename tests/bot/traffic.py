"""Commands members send to every guild while the cluster changes, and what must hold after.

Slash and prefix transfers and balances, each answered exactly once, the ledger holding exactly
the transfers answered, coins conserved in every guild.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.db.models import LedgerEntry
from sandbox import SandboxServer
from tests.bot.cluster import publish
from tests.bot.world import community_world
from tests.conftest import Backend
from tests.ledger_checks import total_coins
from testsupport.keys import delete_keys

#: The members of every guild that send commands (each granted 1,000 coins before).
NAMES = ["m1", "m2", "m3", "m4"]


async def traffic_sandbox(pg: Backend, shards: int) -> SandboxServer:
    """A started sandbox: one guild on each of `shards` shards, its members each with 1,000
    coins, the bot's commands published, and no shard state left in Redis by earlier tests."""
    await delete_keys(
        pg.redis_client, "identify:*", "shard:*", "cluster:*", "answered:*", "gen*", "cd:*"
    )
    world = community_world([(s, shards) for s in range(shards)], members=4)
    server = SandboxServer(world=world, identify_window=0.3, interaction_deadline=40)
    await server.start()
    await publish(server, pg.db_url)
    for guild in world.guilds.values():
        for name in NAMES:
            await pg.bank.grant(guild.id, 1, world.user(name).id, 1_000)
    return server


@dataclass
class Command:
    """One command a member sent, and every answer the bot gave to it."""

    form: str  # "slash" or "prefix"
    name: str  # "transfer" or "balance"
    guild: int
    at: float  # monotonic time it was sent
    answers: list[str] = field(default_factory=list)
    #: Slash: the interaction id (prefix: the message id), the key of its ledger rows.
    key: int = 0


@dataclass
class Tally:
    """What a CommandStream saw, by form."""

    sent: Counter[str] = field(default_factory=Counter)
    answered_once: Counter[str] = field(default_factory=Counter)
    #: Slash commands that reached the bot after Discord's 3 s window (a pod was killed): not
    #: executed, no answer, no effect. Prefix commands have a 30 s window; none is that late.
    too_late: Counter[str] = field(default_factory=Counter)
    transfers_done: int = 0

    def line(self) -> str:
        parts = [
            f"{form}: {self.sent[form]} sent, {self.answered_once[form]} answered once"
            + (f", {self.too_late[form]} too late to run" if self.too_late[form] else "")
            for form in ("slash", "prefix")
        ]
        return "; ".join(parts) + f"; {self.transfers_done} transfers in the ledger"


class CommandStream:
    """Slash and prefix commands (transfer and balance, in turns) to a guild of every shard.

    Slash commands go out ten a second, round the guilds. Prefix commands go out in one lane
    per guild, in its #quiet channel, one at a time (the next once the last was answered), so
    that every bot message in a lane's channel answers one of its commands: a second answer
    to a replayed message shows as one message too many.
    """

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.driver = server.driver
        self.guilds = list(server.world.guilds.values())
        self.commands: list[Command] = []
        self._handles: list[tuple[Command, Any]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: (from, to) monotonic times in which a killed pod's shards had no owner.
        self.gaps: list[tuple[float, float]] = []

    def cancel(self) -> None:
        """Stop sending at once, checking nothing (a test that failed already)."""
        for task in self._tasks:
            task.cancel()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._slash())]
        self._tasks += [asyncio.create_task(self._lane(i)) for i in range(len(self.guilds))]

    def _pick(self, rng: random.Random, i: int) -> tuple[str, str, str, int]:
        sender, recipient = rng.sample(NAMES, 2)
        return ("transfer" if i % 2 == 0 else "balance"), sender, recipient, rng.randint(1, 5)

    async def _slash(self) -> None:
        rng = random.Random(11)
        i = 0
        while not self._stop.is_set():
            guild = self.guilds[i % len(self.guilds)]
            name, sender, recipient, amount = self._pick(rng, i)
            options: dict[str, Any] = {}
            if name == "transfer":
                options = {"member": recipient, "amount": amount}
            handle = await self.driver.slash(guild, "general", sender, name, **options)
            command = Command("slash", name, guild.id, time.monotonic(), key=handle.id)
            self.commands.append(command)
            self._handles.append((command, handle))
            i += 1
            await asyncio.sleep(0.1)  # the offered rate: ten slash commands a second

    async def _lane(self, index: int) -> None:
        rng = random.Random(100 + index)
        guild = self.guilds[index]
        i = 0
        while not self._stop.is_set():
            name, sender, recipient, amount = self._pick(rng, i)
            target = f"<@{self.server.world.user(recipient).id}>"
            text = f"!transfer {target} {amount}" if name == "transfer" else "!balance"
            sent = await self.driver.send_message(guild, "quiet", sender, text)
            command = Command("prefix", name, guild.id, time.monotonic(), key=sent.id)
            self.commands.append(command)
            reply = await self.driver.wait_reply(sent, timeout=40)
            command.answers.append(reply.content)
            i += 1
            await asyncio.sleep(0.2)  # each lane offers five commands a second at most

    async def finish(self) -> Tally:
        """Stop sending; check that every command was answered exactly once (or, for slash
        commands late because a pod was killed, not run at all), none refused, and that the
        ledger holds exactly the transfers answered; coins conserved in every guild."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        tally = Tally()
        # Together, not each in turn: every unanswered one would cost its whole timeout. One
        # sent while a killed pod's shards had no owner is answered within seconds or never
        # (past its 3 s window it is not run); the pods have converged by now.
        answered = await asyncio.gather(
            *(_answered(h, 10 if self._in_a_gap(c.at) else 40) for c, h in self._handles)
        )
        for (command, handle), done in zip(self._handles, answered, strict=True):
            if not done:
                assert self._in_a_gap(command.at), command  # only a killed pod's commands
                assert handle.history == [], command
                tally.too_late[command.form] += 1
                continue
            command.answers = [m.content for m in handle.history]
        for guild in self.guilds:
            lane = [c for c in self.commands if c.form == "prefix" and c.guild == guild.id]
            in_channel = self.driver.bot_messages(guild, "quiet")
            assert len(in_channel) == len(lane), (guild.name, [m.content for m in in_channel])
        for command in self.commands:
            tally.sent[command.form] += 1
            if command.form == "slash" and not command.answers:
                continue
            assert len(command.answers) == 1, command
            expected = "Sent" if command.name == "transfer" else "You hold"
            assert command.answers[0].startswith(expected), command  # none refused
            tally.answered_once[command.form] += 1
        transfers = [c for c in self.commands if c.name == "transfer" and c.answers]
        tally.transfers_done = await LedgerEntry.filter(kind="transfer_out").count()
        assert tally.transfers_done == len(transfers)  # every effect has its one answer
        for guild in self.guilds:
            assert await total_coins(guild.id) == 1_000 * len(NAMES)
        return tally

    def _in_a_gap(self, at: float) -> bool:
        return any(start - 0.5 <= at <= end for start, end in self.gaps)


async def _answered(handle: Any, within: float) -> bool:
    """Whether the interaction got its response within `within` seconds."""
    try:
        await handle.wait_response(timeout=within)
    except TimeoutError:
        return False
    return True
