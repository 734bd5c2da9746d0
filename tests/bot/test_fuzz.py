"""Random arguments to every command, slash and prefix: nothing crashes, refusals write nothing.

Seeded (FUZZ_SEED, default fixed) so a failure can be replayed; FUZZ_ROUNDS sets how many
random invocations each command gets per form.
"""

from __future__ import annotations

import os
import random
from typing import Any

from sandbox.interactions import CHANNEL, INTEGER, STRING, SUB_COMMAND, USER
from tests.bot.harness import Harness, capture_errors, is_error, snapshot

SEED = int(os.environ.get("FUZZ_SEED", "20261126"))
ROUNDS = int(os.environ.get("FUZZ_ROUNDS", "6"))
WORDS = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "42",
    "-9999999999",
    "9" * 30,
    "1e9",
    "0x10",
    "1.5",
    "10m",
    "2h",
    "7d",
    "1w2d",
    "29d",
    "0s",
    "99999999w",
    "5q",
    "h",
    "all",
    "here",
    "dm",
    "channel",
    "add",
    "remove",
    "warn",
    "ban",
    "@everyone",
    "@here",
    "<@1>",
    "<@!0>",
    "<#1>",
    "<@&1>",
    '"',
    "'",
    '"unclosed',
    'say "hi" there',
    "\\",
    "`code`",
    "**bold**",
    "émoji 🎉",
    "\u200b",
    "\x00",
    "ＡＢＣ",
    "a" * 40,
    "b" * 1100,
    "x\ny",
    "#general",
    "<#general>",
]


def random_text(rng: random.Random) -> str:
    """Up to four random words, sometimes very long."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))[:1900]


class Fuzzer:
    """Builds random slash options and prefix argument strings from the synced schemas."""

    def __init__(self, h: Harness, rng: random.Random) -> None:
        self.h, self.rng = h, rng
        self.people = ["m2", "m3", "mod", "admin", "owner", "otherbot", h.bot.user.name]
        self.channels = ["general", "modlog", "levels", "quiet"]

    def mention(self) -> str:
        name = self.rng.choice(self.people)
        return self.rng.choice([self.h.mention(name), str(self.h.id_of(name)), name])

    def prefix_args(self) -> str:
        parts = [self.mention()] if self.rng.random() < 0.6 else []
        parts.append(random_text(self.rng))
        return " ".join(parts)

    def option(self, spec: dict[str, Any]) -> Any:
        if spec.get("choices"):
            return self.rng.choice(spec["choices"])["value"]
        kind = spec["type"]
        if kind == STRING:
            return random_text(self.rng)[: spec.get("max_length", 6000)] or "x"
        if kind == INTEGER:
            low, high = spec.get("min_value", -(2**53) + 1), spec.get("max_value", 2**53 - 1)
            values = [
                0,
                -1,
                1,
                7,
                8,
                99,
                2**31,
                2**53 - 1,
                -(2**53) + 1,
                self.rng.randint(-(10**6), 10**6),
            ]
            return self.rng.choice([v for v in values if low <= v <= high] or [low])
        if kind == USER:
            return self.rng.choice(self.people)
        if kind == CHANNEL:
            return self.rng.choice(self.channels)
        raise AssertionError(f"no generator for option type {kind}")

    def options(self, schema: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            spec["name"]: self.option(spec)
            for spec in schema
            if spec.get("required") or self.rng.random() < 0.5
        }


def invocations(h: Harness) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    """(command, subcommand, option schema) for every synced slash command."""
    found = []
    for (name, _kind), data in sorted(h.server.world.commands.items()):
        subs = [o for o in data.get("options") or [] if o["type"] == SUB_COMMAND]
        if subs:
            found += [(name, sub["name"], sub.get("options") or []) for sub in subs]
        else:
            found.append((name, None, data.get("options") or []))
    return found


async def test_random_arguments_never_crash_and_refusals_write_nothing(h: Harness) -> None:
    rng = random.Random(SEED)
    fuzz = Fuzzer(h, rng)
    await h.bot.services.bank.grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 1000)
    commands = invocations(h)
    assert len(commands) >= 25
    refused = succeeded = 0
    with capture_errors() as errors:
        for name, sub, schema in commands:
            for round_ in range(ROUNDS * 2):
                caller = "owner" if round_ % 2 == 0 else "m1"
                form = "slash" if round_ < ROUNDS else "prefix"
                before = await snapshot()
                if form == "slash":
                    options = fuzz.options(schema)
                    reply = await h.slash(caller, name, sub, **options)
                    sent: Any = options
                else:
                    sent = " ".join(w for w in (name, sub or "", fuzz.prefix_args()) if w)
                    reply = await h.prefix(caller, sent)
                where = (form, caller, sent, reply.content[:200])
                assert len(reply.content) <= 2000, where
                if is_error(reply):
                    refused += 1
                    assert await snapshot() == before, where
                else:
                    succeeded += 1
    assert not errors.records, [r.getMessage() for r in errors.records]
    assert refused > succeeded > 0
    assert (await h.slash("m1", "balance")).content.startswith("You hold")
