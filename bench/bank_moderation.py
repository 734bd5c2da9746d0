"""The moderation part of the bank workload: bans, tempbans, unbans and pardons under the same
nemesis as the transfers (plus kills aimed at the middle of a ban: the process serving the
guild is SIGKILLed the moment the ban's DM arrives, the case recorded and the ban not yet
applied), then an audit that the case log, the live effects and the sandbox's Discord state
agree.

Each guild's first Moderator sends `/ban` (permanent, or a tempban of a few seconds, so that
some end while pods are killed, or of an hour), `/unban` and `/pardon` at random against a few
members set aside as targets (they send no transfers). Once the load has stopped, the run waits
until no case has Discord work left and no tempban's end is near, stops the pods, and checks,
in one snapshot of the database and of the sandbox:

- every banned target has a live ban in the case log, and every live ban is banned in Discord;
- a live ban is held by an active ban or tempban case, and every active ban or tempban case
  holds its member's ban; no tempban past its end is live;
- no case has Discord work pending or failed;
- a command answered "Case #N" opened case N for that action and member (its idempotency key
  is the interaction); a command answered with an error opened no case; a pardon answered
  "pardoned" left the case pardoned;
- no member got the DM of one case twice.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from bench.data import connect
from bench.harness import progress
from bench.traffic import ERROR_MARK, Crowd, ReplyWatcher, Seat, answer
from sandbox import SandboxServer
from sandbox.world import World
from testsupport.processes import BotProcess

TARGETS = 3  # members per guild set aside as moderation targets
DURATIONS = ["6s", "12s", "1h"]  # tempbans: two end during the run
SETTLE_MARGIN_S = 20.0  # no tempban may end this close to the audit
_CASE = re.compile(r"^Case #(\d+)")
ANOMALIES = (
    "banned in Discord without a live ban in the case log",
    "live ban in the case log, not banned in Discord",
    "live ban held by a case that is not an active ban",
    "active ban case that holds no ban",
    "tempban past its end still live",
    "Discord work left pending",
    "Discord work failed",
    "answered done, case differs or missing",
    "answered an error, yet a case was opened",
    "answered pardoned, case not pardoned",
    "a member got the DM of one case twice",
)


@dataclass
class Order:
    """One moderation command and what the bot answered."""

    interaction_id: int
    guild_id: int
    action: str  # ban, tempban, unban, pardon
    target: int  # a user id (pardon: the case's member)
    number: int | None = None  # pardon: the case pardoned
    kind: str = "unknown"  # done, failed, unknown
    text: str = ""


def set_aside(world: World) -> dict[int, tuple[Seat, list[int]]]:
    """Per guild: its moderator's seat and the targets' user ids (plain members)."""
    chosen: dict[int, tuple[Seat, list[int]]] = {}
    for guild in world.guilds.values():
        channel = world.text_channels(guild)[0]
        roles = {r.id: r.name for r in guild.roles.values()}
        staff = [m for m in guild.members.values() if "Moderator" in {roles[r] for r in m.roles}]
        plain = [
            m.user.id
            for m in guild.members.values()
            if not m.user.bot
            and m.user.id != guild.owner_id
            and not {"Moderator", "Admin"} & {roles[r] for r in m.roles}
        ]
        chosen[guild.id] = (Seat(guild, channel, staff[0]), plain[-TARGETS:])
    return chosen


def targets_of(aside: dict[int, tuple[Seat, list[int]]]) -> set[int]:
    """Every target's user id (they stay out of the transfers)."""
    return {uid for _, ids in aside.values() for uid in ids}


class Moderators(Crowd):
    """The guilds' moderators: who they act on, and the record of every answer."""

    def __init__(self, server: SandboxServer, watcher: ReplyWatcher, seed: int) -> None:
        super().__init__(server, watcher, seed)
        self.aside = set_aside(server.world)
        self.orders: list[Order] = []
        self.opened: dict[int, list[int]] = {}  # guild id -> case numbers answered

    async def act(self, i: int, timeout: float) -> str:  # noqa: ASYNC109
        """One command by a random guild's moderator."""
        guild_id = self.rng.choice(sorted(self.aside))
        action = self.rng.choices(["ban", "tempban", "unban", "pardon"], [3, 3, 2, 2])[0]
        if action == "pardon" and not self.opened.get(guild_id):
            action = "ban"
        target = self.rng.choice(self.aside[guild_id][1])
        return await self.order(guild_id, action, target, timeout)

    async def order(self, guild_id: int, action: str, target: int, timeout: float) -> str:  # noqa: ASYNC109
        """`action` on `target` by the guild's moderator; the answer's kind."""
        seat = self.aside[guild_id][0]
        options: dict[str, Any] = {"reason": f"bench order {len(self.orders)}"}
        order = Order(0, guild_id, action, target)
        if action == "pardon":
            order.number = self.rng.choice(self.opened[guild_id])
            options["number"] = order.number
            name = "pardon"
        else:
            name = "unban" if action == "unban" else "ban"
            options["user"] = order.target
            if action == "tempban":
                options["duration"] = self.rng.choice(DURATIONS)
        handle = await self.driver.slash(seat.guild, seat.channel, seat.member, name, **options)
        order.interaction_id = handle.id
        self.orders.append(order)
        view = await answer(self.watcher.interaction(handle), timeout)
        if view is None:
            return order.kind
        order.text = view.content
        order.kind = "failed" if view.content.startswith(ERROR_MARK) else "done"
        found = _CASE.match(view.content)
        if order.kind == "done" and found and action != "pardon":
            self.opened.setdefault(guild_id, []).append(int(found.group(1)))
        return order.kind

    async def ban_then_kill(
        self,
        pods: list[BotProcess],
        redis_url: str,
        shard_count: int,
        timeout: float,  # noqa: ASYNC109
    ) -> tuple[BotProcess | None, asyncio.Task[str]]:
        """A ban, and SIGKILL for the process serving its guild the moment the ban's DM arrives:
        the case is recorded then, and the ban itself is a few milliseconds away. Returns the
        pod killed (None if no pod was found holding the shard) and the order's task."""
        guild_id = self.rng.choice(sorted(self.aside))
        target = self.rng.choice(self.aside[guild_id][1])
        client = redis.from_url(redis_url)
        try:
            owner = await client.get(f"shard:{(guild_id >> 22) % shard_count}:lease")
        finally:
            await client.aclose()
        held = owner.decode() if isinstance(owner, bytes) else owner
        pid = int(held.split("|")[0].split(":")[1]) if held else None
        pod = next((p for p in pods if p.running and p.pid == pid), None)
        seen = len(self.driver.dms(target))
        task = asyncio.create_task(self.order(guild_id, "ban", target, timeout))
        try:
            await self.driver.wait_until(
                lambda: len(self.driver.dms(target)) > seen or None, 5, "the ban's DM"
            )
        except TimeoutError:
            return None, task
        if pod is not None:
            await pod.kill()
        return pod, task


BUSY = (
    "SELECT 'pending' AS what, guild_id, number, next_attempt_at AS at FROM cases WHERE pending"
    " UNION ALL SELECT 'ends', e.guild_id, c.number, e.until FROM effects e"
    " JOIN cases c ON c.id = e.case_id WHERE e.until < now() + make_interval(secs => $1)"
)


async def settle(dsn: str, within: float) -> float:
    """Wait until no case has Discord work left and no tempban ends within SETTLE_MARGIN_S
    (or has ended unprocessed); seconds waited. What is still busy then is reported."""
    started = time.perf_counter()
    async with connect(dsn) as conn:
        while busy := await conn.fetch(BUSY, SETTLE_MARGIN_S):
            if time.perf_counter() - started > within:
                progress(f"still busy after {within:g} s: {[dict(r) for r in busy]}")
                break
            await asyncio.sleep(0.5)
    return time.perf_counter() - started


async def audit(dsn: str, server: SandboxServer, moderators: Moderators) -> dict[str, Any]:
    """Every check of the module docstring, in one snapshot of the database (pods stopped)."""
    async with (
        connect(dsn) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        cases = await conn.fetch(
            "SELECT id, guild_id, number, action, target_id, state, pending, action_state,"
            " lift_state, idempotency_key, attempts FROM cases"
        )
        live = await conn.fetch(
            "SELECT guild_id, target_id, case_id, until, until <= now() AS over FROM effects"
            " WHERE kind = 'ban' AND case_id IS NOT NULL"
        )
    anomalies: Counter[str] = Counter(dict.fromkeys(ANOMALIES, 0))
    examples: list[dict[str, Any]] = []

    def flag(kind: str, **detail: Any) -> None:
        anomalies[kind] += 1
        if len(examples) < 10:
            examples.append({"anomaly": kind, **detail})

    by_id = {c["id"]: c for c in cases}
    by_key = {c["idempotency_key"]: c for c in cases if c["idempotency_key"]}
    by_number = {(c["guild_id"], c["number"]): c for c in cases}
    held = {(e["guild_id"], e["target_id"]): e for e in live}
    for guild_id, (_, targets) in moderators.aside.items():
        bans = server.world.guilds[guild_id].bans
        for uid in targets:
            if uid in bans and (guild_id, uid) not in held:
                flag(ANOMALIES[0], guild=guild_id, user=uid)
            if uid not in bans and (guild_id, uid) in held:
                flag(ANOMALIES[1], guild=guild_id, user=uid)
    for effect in live:
        holder = by_id[effect["case_id"]]
        if holder["action"] not in ("ban", "tempban") or holder["state"] != "active":
            flag(ANOMALIES[2], case=holder["number"], guild=holder["guild_id"])
        if effect["over"]:
            flag(ANOMALIES[4], case=holder["number"], guild=holder["guild_id"])
    holders = {e["case_id"] for e in live}
    for case in cases:
        where = {"guild": case["guild_id"], "case": case["number"]}
        active_ban = case["action"] in ("ban", "tempban") and case["state"] == "active"
        if active_ban and case["id"] not in holders:
            flag(ANOMALIES[3], **where)
        if case["pending"]:
            flag(ANOMALIES[5], **where)
        if "failed" in (case["action_state"], case["lift_state"]):
            flag(ANOMALIES[6], **where)
    for order in moderators.orders:
        detail = {"interaction": order.interaction_id, "reply": order.text}
        if order.action == "pardon":
            if order.kind == "done":
                case = by_number.get((order.guild_id, order.number or 0))
                if case is None or case["state"] != "pardoned":
                    flag(ANOMALIES[9], **detail)
            continue
        case = by_key.get(f"case:{order.interaction_id}")
        if order.kind == "done":
            found = _CASE.match(order.text)
            if (
                case is None
                or found is None
                or (case["number"], case["action"], case["target_id"])
                != (int(found.group(1)), order.action, order.target)
            ):
                flag(ANOMALIES[7], **detail)
        elif order.kind == "failed" and case is not None:
            flag(ANOMALIES[8], **detail)
    for (user, guild_name, number), count in dm_counts(server, moderators).items():
        if count > 1:
            flag(ANOMALIES[10], user=user, guild=guild_name, case=number, dms=count)
    return {
        "anomalies": {k: v for k, v in anomalies.items() if v},
        "anomaly_examples": examples,
        "anomaly_kinds_checked": list(ANOMALIES),
        "cases": len(cases),
        "completed_by_a_later_claim": sum(1 for c in cases if c["attempts"] > 1),
        "live_bans": len(live),
        "orders": dict(Counter(f"{o.action} {o.kind}" for o in moderators.orders)),
        "errors": [
            re.sub(r"<@!?\d+>|\d+", "#", o.text)[:80]
            for o in moderators.orders
            if o.kind == "failed"
        ],
    }


def dm_counts(server: SandboxServer, moderators: Moderators) -> Counter[tuple[int, str, str]]:
    """How many DMs each target got per (guild name, case number)."""
    counts: Counter[tuple[int, str, str]] = Counter()
    for uid in targets_of(moderators.aside):
        for view in server.driver.dms(uid):
            for embed in view.embeds:
                fields = {f.get("name"): f.get("value") for f in embed.get("fields", [])}
                title = str(embed.get("title", ""))
                counts[(uid, title.rpartition(" in ")[2], str(fields.get("Case")))] += 1
    return counts
