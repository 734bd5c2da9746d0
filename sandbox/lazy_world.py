"""Lazy worlds: every guild id is known at once, a guild is only built when first looked up.

``build_world(..., lazy=True)`` replaces ``World.guilds`` and ``World.channels`` with the two
mappings below. Ids, ``in``, ``len`` and iteration over ``World.guilds`` (its keys) cost nothing;
``guilds[id]`` and ``guilds.get(id)`` build that guild (with :meth:`GuildPlan.make`, which
registers its channels); ``channels[id]`` builds the guild the id belongs to
(:func:`~sandbox.generated.owner_of`). What builds **every** guild: ``guilds.values()`` /
``items()``, iterating or sizing ``World.channels``, and looking a guild up by name. A built
guild equals the one an eager world built from the same arguments has.
"""

from __future__ import annotations

from collections.abc import Iterator

from sandbox.generated import GuildPlan, owner_of
from sandbox.lazy_mapping import LazyMapping
from sandbox.world import Channel, Guild, World


class GuildTable(LazyMapping[int, Guild]):
    """``World.guilds`` of a lazy world: guild id -> guild, built on first lookup."""

    __slots__ = ("_plan",)
    built = Guild

    def __init__(self, plan: GuildPlan) -> None:
        super().__init__()
        self._plan = plan
        self._slots.update((plan.guild_id(i), i) for i in range(plan.count))

    def build(self, key: int, placeholder: int) -> Guild:
        """Guild number ``placeholder`` of the plan (it registers itself and its channels)."""
        return self._plan.make(placeholder)

    def pending(self, guild_id: int) -> bool:
        """Whether ``guild_id`` is a guild of the plan not built yet."""
        return guild_id in self._slots and not self.is_built(guild_id)

    def build_all(self) -> None:
        """Build every guild not built yet."""
        for guild_id in [g for g in self._slots if not self.is_built(g)]:
            self[guild_id]


class ChannelTable(LazyMapping[int, Channel]):
    """``World.channels`` of a lazy world: a lookup builds the channel's guild when needed."""

    __slots__ = ("_guilds",)
    built = Channel

    def __init__(self, guilds: GuildTable) -> None:
        super().__init__()
        self._guilds = guilds

    def __getitem__(self, channel_id: int) -> Channel:
        if channel_id not in self._slots and self._guilds.pending(owner_of(channel_id)):
            self._guilds[owner_of(channel_id)]
        return super().__getitem__(channel_id)

    def __contains__(self, channel_id: object) -> bool:
        try:
            self[channel_id]  # type: ignore[index]  # loads it (__missing__)
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[int]:
        self._guilds.build_all()
        return super().__iter__()

    def __len__(self) -> int:
        self._guilds.build_all()
        return super().__len__()


def make_lazy(world: World, plan: GuildPlan) -> None:
    """Give ``world`` the guilds of ``plan``, each built on first lookup."""
    guilds = GuildTable(plan)
    world.guilds = guilds
    world.channels = ChannelTable(guilds)
