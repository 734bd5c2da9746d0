"""A model-based test of moderation against the real bot on the sandbox.

Random sequences of warn / timeout / untimeout / kick / ban / tempban / unban / pardon, expiries,
actions done by hand in Discord (audit-log entries, with odd reasons), Discord failing a call
(then the outbox or a restarted bot completes it), a crash right after a case was recorded
(then a restart), a command delivered again and members rejoining. After every step the case
log (numbers, actions, members, states), the live effects (who holds each ban and timeout) and
the sandbox's Discord state (bans, timeouts, who is in the server) must all match a reference
model written here from the rules of docs/moderation.md, and no Discord work may be left.

Seeded; CASE_MODEL_SEED, CASE_MODEL_SEQUENCES and CASE_MODEL_STEPS change it (small in CI).
A failure names the seed, the sequence and every step so far, which replays it exactly.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.bot.client import GuildBot
from app.bot.cogs.moderation.outbox import Outbox
from app.db.models import Case, Effect
from app.domain.idempotency import fresh_key
from app.domain.types import ActionState, CaseAction, CaseState, EffectKind
from sandbox import InteractionHandle, SandboxServer
from tests.bot.harness import Harness, bot_settings, is_error, start_test_bot
from tests.bot.world import community_world
from tests.conftest import Backend
from testsupport.waiting import wait_for

SEED = int(os.environ.get("CASE_MODEL_SEED", "20261201"))
SEQUENCES = int(os.environ.get("CASE_MODEL_SEQUENCES", "5"))
STEPS = int(os.environ.get("CASE_MODEL_STEPS", "25"))
POOL = ["m1", "m2", "m3", "m4", "m5"]
LEASE_S = 1.0
STEP_TIMEOUT = 30.0
A, BAN, TIMEOUT = CaseAction, EffectKind.BAN, EffectKind.TIMEOUT
ODD_REASONS = [None, "spam\x00bot", "\x00", "tab\tand\nnewline", "long " * 120]
#: The route each action calls, to make Discord fail it.
ROUTES = {
    A.BAN: "PUT /guilds/{guild_id}/bans/{user_id}",
    A.TEMPBAN: "PUT /guilds/{guild_id}/bans/{user_id}",
    A.UNBAN: "DELETE /guilds/{guild_id}/bans/{user_id}",
    A.TIMEOUT: "PATCH /guilds/{guild_id}/members/{user_id}",
    A.KICK: "DELETE /guilds/{guild_id}/members/{user_id}",
}


def dump_tasks() -> None:
    """Every task's stack on stderr: where a step that never finished was waiting."""
    for task in asyncio.all_tasks():
        print(f"-- task {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=15, file=sys.stderr)


@dataclass
class Expected:
    """The reference model: what the case log, the effects and Discord must show."""

    cases: list[list[Any]] = field(default_factory=list)  # [action, member, state]
    holders: dict[tuple[str, EffectKind], int] = field(default_factory=dict)
    present: set[str] = field(default_factory=lambda: set(POOL))

    @property
    def banned(self) -> set[str]:
        """Banned in Discord: exactly the members with a live ban."""
        return {m for (m, k) in self.holders if k == BAN}

    def open(self, action: CaseAction, member: str, applied: bool = True) -> int:
        """A new case, with the rules of the effect model (`applied`: Discord did it)."""
        self.cases.append([action, member, CaseState.ACTIVE])
        number = len(self.cases)
        if action in (A.UNTIMEOUT, A.TIMEOUT):
            self.end(member, TIMEOUT)  # lifted, or superseded
        if action in (A.UNBAN, A.BAN, A.TEMPBAN):
            self.end(member, BAN)  # lifted, or superseded
        if action == A.TIMEOUT:
            self.holders[(member, TIMEOUT)] = number
        if action in (A.BAN, A.TEMPBAN):
            self.holders[(member, BAN)] = number
        if action in (A.KICK, A.BAN, A.TEMPBAN) and applied:
            self.leave(member)
        return number

    def leave(self, member: str) -> None:
        """A kick or ban took the member out of the server, and their timeout with them."""
        self.end(member, TIMEOUT)
        self.present.discard(member)

    def end(self, member: str, kind: EffectKind) -> None:
        number = self.holders.pop((member, kind), None)
        if number is not None:
            self.cases[number - 1][2] = CaseState.EXPIRED

    def pardon(self, number: int) -> None:
        member = self.cases[number - 1][1]
        self.cases[number - 1][2] = CaseState.PARDONED
        for kind in (BAN, TIMEOUT):
            if self.holders.get((member, kind)) == number:
                self.holders.pop((member, kind))

    def timed(self) -> list[tuple[str, EffectKind]]:
        """Live effects with an end: timeouts and tempbans."""
        return [
            (m, k)
            for (m, k), n in self.holders.items()
            if k == TIMEOUT or self.cases[n - 1][0] == A.TEMPBAN
        ]


class Sequence:
    """One random sequence in its own guild."""

    def __init__(self, run: ModelRun, index: int) -> None:
        self.run, self.index = run, index
        self.rng = random.Random(f"{SEED}:{index}")
        self.guild = list(run.server.world.guilds.values())[index]
        self.model = Expected()
        self.log: list[str] = []
        self.last: tuple[InteractionHandle, int] | None = None

    @property
    def h(self) -> Harness:
        return Harness(self.run.server, self.run.bot, self.guild)

    def note(self, text: str) -> None:
        self.log.append(text)

    def fail(self, what: str) -> AssertionError:
        steps = "\n  ".join(self.log)
        return AssertionError(
            f"seed {SEED}, sequence {self.index}, step {len(self.log)}: {what}\n  {steps}"
        )

    # -- the steps ------------------------------------------------------------------------
    async def step(self) -> None:
        kinds = {
            "warn": 1,
            "timeout": 2,
            "untimeout": 1,
            "kick": 1,
            "ban": 2,
            "tempban": 2,
            "unban": 2,
            "pardon": 3,
            "expire": 2,
            "manual": 3,
            "discord_down": 2,
            "crash": 1,
            "redeliver": 1,
            "rejoin": 2,
        }
        kind = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                if kind in ("warn", "timeout", "untimeout", "kick", "ban", "tempban", "unban"):
                    await self.command(A(kind))
                else:
                    await getattr(self, kind)()
        except TimeoutError:
            dump_tasks()
            raise self.fail(f"{kind} did not finish within {STEP_TIMEOUT} s") from None
        await self.settle()
        await self.check()

    def member(self, present: bool | None = None) -> str | None:
        pool = [m for m in POOL if present is None or (m in self.model.present) == present]
        return self.rng.choice(pool) if pool else None

    async def command(
        self, action: CaseAction, *, discord_down: bool = False, target: str | None = None
    ) -> None:
        """A moderator's command, slash or prefix; refused when the model says it must be."""
        needs_member = action in (A.WARN, A.TIMEOUT, A.UNTIMEOUT, A.KICK)
        target = target or self.member(True if needs_member else None)
        if target is None:
            return self.note(f"{action}: nobody to act on")
        refused = (action == A.UNTIMEOUT and (target, TIMEOUT) not in self.model.holders) or (
            action == A.UNBAN and target not in self.model.banned
        )
        if discord_down and refused:
            return self.note(f"{action} {target}: would be refused, no Discord call")
        form = self.rng.choice(["slash", "prefix"])
        duration = {A.TIMEOUT: "1h", A.TEMPBAN: "2d"}.get(action)
        self.note(f"{form} {action} {target}" + (" (Discord down)" if discord_down else ""))
        if discord_down:
            self.run.server.fail_next(ROUTES[action], count=1, status=503)
        reply, handle = await self.send(form, action, target, duration)
        if refused:
            if not is_error(reply):
                raise self.fail(f"expected a refusal, got {reply.content!r}")
            return None
        number = self.model.open(action, target)
        if is_error(reply) or not reply.content.startswith(f"Case #{number}:"):
            raise self.fail(f"expected case #{number}, got {reply.content!r}")
        if discord_down and "not confirmed" not in reply.content:
            raise self.fail(f"expected a pending action, got {reply.content!r}")
        if handle is not None:
            self.last = (handle, number)
        return None

    async def send(
        self, form: str, action: CaseAction, target: str, duration: str | None
    ) -> tuple[Any, InteractionHandle | None]:
        h, name = self.h, "ban" if action == A.TEMPBAN else action.value
        reason = "rule broken"
        if form == "prefix":
            words = [h.mention(target), duration or "", reason]
            return await h.prefix("mod", f"{name} {' '.join(w for w in words if w)}"), None
        options: dict[str, Any] = {"reason": reason}
        options["user" if name in ("ban", "unban") else "member"] = target
        if duration:
            options["duration"] = duration
        handle = await h.driver.slash(h.guild, "general", "mod", name, **options)
        return await handle.wait_response(8), handle

    async def pardon(self) -> None:
        if not self.model.cases:
            return self.note("pardon: no case yet")
        number = self.rng.randrange(1, len(self.model.cases) + 1)
        form = self.rng.choice(["slash", "prefix"])
        self.note(f"{form} pardon #{number}")
        reply = await self.h.run(
            form, "mod", "pardon", f"{number} forgiven", number=number, reason="forgiven"
        )
        if self.model.cases[number - 1][2] == CaseState.PARDONED:
            if not is_error(reply) or "already pardoned" not in reply.content:
                raise self.fail(f"expected 'already pardoned', got {reply.content!r}")
            return None
        self.model.pardon(number)
        if is_error(reply):
            raise self.fail(f"pardon refused: {reply.content!r}")
        return None

    async def expire(self) -> None:
        """Time passes for one live timeout or tempban: its end is now in the past."""
        timed = self.model.timed()
        if not timed:
            return self.note("expire: nothing with an end")
        member, kind = self.rng.choice(timed)
        self.note(f"expire the {kind} of {member}")
        past = datetime.now(UTC) - timedelta(seconds=1)
        uid = self.h.id_of(member)
        await Effect.filter(guild_id=self.guild.id, target_id=uid, kind=kind).update(until=past)
        if kind == TIMEOUT:  # Discord ends a timeout by itself
            self.h.driver.member(self.guild, member).communication_disabled_until = past
        self.model.end(member, kind)
        await self.run.outbox().run_once()
        return None

    async def manual(self) -> None:
        """A moderator acts by hand in Discord (an audit-log entry), with an odd reason."""
        h, reason = self.h, self.rng.choice(ODD_REASONS)
        choices = ["ban", "unban", "kick", "timeout", "untimeout"]
        action = self.rng.choice(choices)
        if action == "unban":
            target = self.rng.choice(sorted(self.model.banned)) if self.model.banned else None
        elif action == "untimeout":
            timed = [m for (m, k) in self.model.holders if k == TIMEOUT]
            target = self.rng.choice(timed) if timed else None
        else:
            target = self.member(None if action == "ban" else True)
        if target is None:
            return self.note(f"manual {action}: nobody to act on")
        self.note(f"manual {action} {target} reason={reason!r}")
        if action == "ban":
            await h.driver.ban(self.guild, "mod2", target, reason=reason)
        elif action == "unban":
            await h.driver.unban(self.guild, "mod2", target, reason=reason)
        elif action == "kick":
            await h.driver.kick(self.guild, "mod2", target, reason=reason)
        else:
            length = 600 if action == "timeout" else None
            await h.driver.timeout(self.guild, "mod2", target, length, reason=reason)
        self.model.open(A(action), target)
        return None

    async def discord_down(self) -> None:
        """Discord fails the action's call: the case stays pending until the outbox or a
        restarted bot completes it."""
        action = self.rng.choice([A.BAN, A.TEMPBAN, A.TIMEOUT, A.UNBAN, A.KICK])
        await self.command(action, discord_down=True)
        self.run.server.rest.rate_limits.rules.clear()
        if self.rng.random() < 0.3:
            self.note("restart the bot")
            await self.run.restart()
        else:
            self.note("run the outbox past the retry delay")
            await self.run.outbox().run_once(datetime.now(UTC) + timedelta(minutes=1))

    async def crash(self) -> None:
        """The bot recorded a case (its work claimed, as a command does) and died before
        touching Discord; a restarted bot completes it once the claim's lease runs out. Half
        the time a moderator lifts it meanwhile: the late action must then not be applied."""
        action = self.rng.choice([A.BAN, A.TEMPBAN, A.KICK, A.TIMEOUT])
        target = self.member(True if action in (A.KICK, A.TIMEOUT) else None)
        if target is None:
            return self.note(f"crash during {action}: nobody to act on")
        self.note(f"crash right after recording {action} {target}, then restart")
        duration = {A.TIMEOUT: timedelta(hours=1), A.TEMPBAN: timedelta(days=1)}.get(action)
        await self.run.bot.services.moderation.open_case(
            self.guild.id,
            action,
            self.h.id_of(target),
            self.h.id_of("mod"),
            "rule broken",
            duration,
            key=fresh_key("case"),
            notify=True,
            claim_for=timedelta(seconds=LEASE_S),
        )
        self.model.open(action, target, applied=False)
        lifted = action != A.KICK and self.rng.random() < 0.5
        if lifted:  # then the restarted bot must not apply it
            await self.command(A.UNTIMEOUT if action == A.TIMEOUT else A.UNBAN, target=target)
        await self.run.restart()
        if action in (A.KICK, A.BAN, A.TEMPBAN) and not lifted:
            self.model.leave(target)
        return None

    async def redeliver(self) -> None:
        """The last slash command delivered again: the same case, its state reported."""
        if self.last is None:
            return self.note("redeliver: no slash command yet")
        handle, number = self.last
        self.note(f"redeliver the command of case #{number}")
        seen = len(handle.record.followups)
        self.h.driver.redeliver(handle)
        again = await handle.wait_followup(seen, 8)
        if not again.content.startswith(f"Case #{number}:"):
            raise self.fail(f"a redelivery answered {again.content!r}")
        return None

    async def rejoin(self) -> None:
        away = [m for m in POOL if m not in self.model.present and m not in self.model.banned]
        if not away:
            return self.note("rejoin: nobody away")
        member = self.rng.choice(away)
        self.note(f"{member} rejoins")
        await self.h.driver.add_member(self.guild, member, roles=["Member"])
        self.model.present.add(member)
        return None

    # -- after every step ---------------------------------------------------------------
    async def settle(self) -> None:
        """Every case the model expects is recorded and no Discord work is left."""

        async def quiet() -> bool:
            rows = await Case.filter(guild_id=self.guild.id).count()
            pending = await Case.filter(guild_id=self.guild.id, pending=True).exists()
            return rows == len(self.model.cases) and not pending

        try:
            await wait_for(quiet, within=10)
        except AssertionError:
            raise self.fail("the case log did not settle") from None

    async def check(self) -> None:
        """The case log, the live effects and Discord agree with the model."""
        h, model = self.h, self.model
        ids = {h.id_of(m): m for m in POOL}
        rows = await Case.filter(guild_id=self.guild.id).order_by("number")
        logged = [[r.action, ids.get(r.target_id), r.state] for r in rows]
        if logged != model.cases:
            raise self.fail(f"case log {logged} != model {model.cases}")
        failed = [r.number for r in rows if ActionState.FAILED in (r.action_state, r.lift_state)]
        if failed:
            raise self.fail(f"cases whose Discord work failed: {failed}")
        live = {
            (ids[e.target_id], e.kind): next(r.number for r in rows if r.id == e.case_id)
            for e in await Effect.filter(guild_id=self.guild.id, case_id__not_isnull=True)
        }
        if live != model.holders:
            raise self.fail(f"live effects {live} != model {model.holders}")
        guild = h.driver.guild(self.guild)
        discord = {
            "banned": {ids[u] for u in guild.bans if u in ids},
            "present": {ids[u] for u in guild.members if u in ids},
            "timed out": {ids[u] for u, m in guild.members.items() if u in ids and m.timed_out()},
        }
        expected = {
            "banned": model.banned,
            "present": model.present,
            "timed out": {m for (m, k) in model.holders if k == TIMEOUT},
        }
        if discord != expected:
            raise self.fail(f"Discord {discord} != model {expected}")


class ModelRun:
    """The sandbox, the bot (restartable) and the sequences."""

    def __init__(self, server: SandboxServer, bot: GuildBot, make: Callable[[], Any]) -> None:
        self.server, self.bot, self.make = server, bot, make
        self.restarts = 0

    def outbox(self) -> Outbox:
        cog = self.bot.get_cog("Outbox")
        assert isinstance(cog, Outbox)
        return cog

    async def restart(self) -> None:
        await self.bot.close()
        self.bot = await self.make()
        self.restarts += 1


@pytest.fixture(scope="module")
async def model_server() -> AsyncIterator[SandboxServer]:
    """A sandbox with one guild per sequence."""
    world = community_world([(0, 1)] * SEQUENCES, members=len(POOL))
    server = SandboxServer(world=world, identify_window=0.01, interaction_deadline=10)
    await server.start()
    yield server
    await server.stop()


async def test_case_log_effects_and_discord_agree_after_every_step(
    model_server: SandboxServer, pg: Backend, pg_url: str, redis_server_url: str
) -> None:
    settings = bot_settings(model_server, pg_url, redis_server_url, outbox_lease_s=LEASE_S)

    async def make() -> GuildBot:
        return await start_test_bot(settings)

    run = ModelRun(model_server, await make(), make)
    steps = 0
    try:
        for index in range(SEQUENCES):
            sequence = Sequence(run, index)
            for _ in range(STEPS):
                await sequence.step()
                steps += 1
    finally:
        await run.bot.close()
    cases = await Case.all().count()
    print(
        f"case model: seed {SEED}, {SEQUENCES} sequences, {steps} steps, {cases} cases, "
        f"{run.restarts} restarts"
    )
    assert steps == SEQUENCES * STEPS
