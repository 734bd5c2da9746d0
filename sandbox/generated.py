"""Generated guilds: each one made from its own seed, so any guild can be built alone, in any order.

:func:`~sandbox.builders.build_world` describes a world as a :class:`GuildPlan` (sizes, seed,
shard count, a shared pool of users and a shared pool of member role patterns). Guild ``i`` is
made by :meth:`GuildPlan.make` from a ``random.Random`` seeded from ``seed`` and ``i`` only; its
channel and role ids are the guild id plus 1, 2, ... (the snowflake's increment bits, which a
guild id leaves at 0), so an id tells its guild (:func:`owner_of`). Building guild 7 before
guild 3, or only guild 7, gives the same guild 7 as building all of them in order: that is what
lets a world be lazy (:mod:`sandbox.lazy_world`).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from math import gcd
from typing import TYPE_CHECKING, TypeVar

from sandbox.member_table import MemberTable, RolePattern
from sandbox.permissions import MODERATION, P
from sandbox.snowflake import guild_id_for_shard
from sandbox.world import CATEGORY, TEXT, VOICE, Channel, Guild, Overwrite, User, snowflake_iso

if TYPE_CHECKING:
    from sandbox.builders import WorldFactory

T = TypeVar("T")
#: The increment bits of a snowflake: a generated guild's channels and roles live there.
INCREMENT_MASK = 0xFFF
#: Role patterns drawn once per world and shared by every member of every guild.
PATTERNS = 4096
_ADJECTIVES = ["quiet", "brave", "lucky", "misty", "amber", "cosmic", "swift", "mellow"]
_ADJECTIVES += ["rusty", "silver", "happy", "wild"]
_NOUNS = ["otter", "falcon", "maple", "harbor", "comet", "meadow", "lantern", "pixel"]
_NOUNS += ["summit", "river", "badger", "fox"]
_TOPICS = ["general", "chat", "memes", "art", "music", "gaming", "help", "news", "dev"]
_TOPICS += ["random", "offtopic", "media"]
#: Strides through the user pool: a guild takes every step-th user from a random start.
_STEPS = [1, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
#: The two roles on top of every generated guild: (name, permissions, colour).
STAFF_ROLES = [("Moderator", MODERATION, 0x3498DB), ("Admin", int(P.ADMINISTRATOR), 0xE67E22)]


def owner_of(snowflake: int) -> int:
    """The generated guild a channel or role id belongs to (the id without its increment)."""
    return snowflake & ~INCREMENT_MASK


@cache
def _name(prefix: str, number: int) -> str:
    """``prefix`` + ``number``: one string object per distinct name, shared by every guild."""
    return f"{prefix}{number}"


@dataclass(frozen=True, slots=True)
class GuildPlan:
    """Sizes and seed of a generated world's guilds, and the users and role patterns they share.

    A guild's roles are, by index: the cosmetic ones (``Role 0`` ...), Moderator, Admin, then
    the bot's managed role. A member's roles are a pattern of such indexes.
    """

    factory: WorldFactory
    count: int
    channels: int
    roles: int
    members: int
    seed: int
    shard_count: int
    pool: tuple[User, ...]
    patterns: tuple[RolePattern, ...]
    #: Strides through the pool that visit every user once (coprime with its size).
    steps: list[int]

    @classmethod
    def create(
        cls,
        factory: WorldFactory,
        count: int,
        channels: int,
        roles: int,
        members: int,
        seed: int,
        shard_count: int | None,
    ) -> GuildPlan:
        """A plan for ``count`` guilds whose members come from a pool of new users."""
        if channels + roles >= INCREMENT_MASK:
            raise ValueError("channels + roles must stay below 4095")
        rng = random.Random(seed)
        humans = max(members - 1, 1)
        pool = tuple(
            factory.user(f"{rng.choice(_ADJECTIVES)}_{rng.choice(_NOUNS)}_{i}")
            for i in range(humans * min(count, 4))
        )
        cosmetic = max(roles - 4, 0)
        patterns = tuple(_pattern(rng, cosmetic) for _ in range(PATTERNS))
        steps = [s for s in _STEPS if gcd(s, len(pool)) == 1]
        return cls(
            factory, count, channels, roles, members, seed, shard_count or 1, pool, patterns, steps
        )

    def guild_id(self, index: int) -> int:
        """The id of guild ``index``: on shard ``index % shard_count``, increment bits 0."""
        count = self.shard_count
        return guild_id_for_shard(index % count, count, index // count)

    def make(self, index: int) -> Guild:
        """Build guild ``index`` into the factory's world, from its own seed alone."""
        rng = random.Random(f"{self.seed}:{index}")
        guild_id = self.guild_id(index)
        ids = itertools.count(guild_id + 1).__next__
        name = f"{_pick(rng, _ADJECTIVES).title()} {_pick(rng, _NOUNS).title()} {index}"
        channels = _channels(rng, ids, self.channels)
        cosmetic = max(self.roles - 4, 0)
        specs = [(_name("Role ", r), 0, int(rng.random() * 0xFFFFFF)) for r in range(cosmetic)]
        made = Guild(guild_id, name, owner_id=0)
        by_name = self.factory.add_roles(made, [*specs, *STAFF_ROLES], ids)
        bot = self.factory.world.bot
        order = [*specs, *STAFF_ROLES, (bot.username, 0, 0)]
        members = MemberTable(
            self.factory.world.users, snowflake_iso(guild_id), [by_name[r[0]].id for r in order]
        )
        humans = self._humans(rng)
        for i, user in enumerate(humans):
            pattern = self.patterns[int(rng.random() * PATTERNS)]
            if i < 3:  # the owner is an Admin, the next two are Moderators
                pattern = _staffed(pattern, cosmetic + (1 if i == 0 else 0), cosmetic)
            members.add(user.id, pattern)
        members.add(bot.id, (cosmetic + 2,))
        made.members = members
        made.owner_id = humans[0].id
        for channel in [c for c in channels if c.type == TEXT][1:2]:
            channel.name = "modlog"
            channel.overwrites = [Overwrite(guild_id, 0, deny=int(P.VIEW_CHANNEL))]
        return self.factory.attach(made, channels)

    def _humans(self, rng: random.Random) -> list[User]:
        """Distinct users of the pool: from a random start, every ``step``-th (coprime with the
        pool's size, so no user comes twice)."""
        size = len(self.pool)
        start = int(rng.random() * size)
        step = _pick(rng, self.steps)
        wanted = min(max(self.members - 1, 1), size)
        return [self.pool[(start + k * step) % size] for k in range(wanted)]


def _pick(rng: random.Random, choices: list[T]) -> T:
    """One of ``choices`` (a single draw; cheaper than ``rng.choice``)."""
    return choices[int(rng.random() * len(choices))]


def _pattern(rng: random.Random, cosmetic: int) -> RolePattern:
    """Up to three cosmetic roles; ~1% Admin, ~2% Moderator (indexes as in :class:`GuildPlan`)."""
    draw = rng.random()
    count = int(draw * 4) if cosmetic else 0
    picks = tuple(dict.fromkeys(int(rng.random() * cosmetic) for _ in range(count)))
    if draw > 0.99:
        return (*picks, cosmetic + 1)
    return (*picks, cosmetic) if draw < 0.02 else picks


def _staffed(pattern: RolePattern, staff: int, cosmetic: int) -> RolePattern:
    """``pattern`` with its staff role (if any) replaced by ``staff``."""
    return (*(r for r in pattern if r < cosmetic), staff)


def _channels(rng: random.Random, ids: Callable[[], int], total: int) -> list[Channel]:
    """One category per ten channels, every fifth a voice channel, the first text one general."""
    made: list[Channel] = []
    category: int | None = None
    text_seen = 0
    for position in range(total):
        if position % 10 == 0 and total > 1:
            category = ids()
            name = _name("Category ", position // 10)
            made.append(Channel(category, CATEGORY, name, None, position))
            continue
        if position % 5 == 4:
            made.append(Channel(ids(), VOICE, _name("voice-", position), None, position, category))
            continue
        name = "general" if text_seen == 0 else _name(f"{_pick(rng, _TOPICS)}-", position)
        text_seen += 1
        made.append(Channel(ids(), TEXT, name, None, position, category))
    return made
