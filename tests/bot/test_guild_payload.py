"""A cached guild written back as a payload (app/bot/guild_payload.py) rebuilds the same guild
in an unmodified discord.py, and events of uncached guilds can be held (lazy handover)."""

from __future__ import annotations

import json
from typing import Any

import discord

from app.bot import discord_internals as internals
from app.bot.client import GuildBot
from app.bot.guild_payload import guild_payload
from sandbox import payloads
from sandbox.builders import build_world
from tests.bot.test_discord_internals import make_bot


def _with_user(bot: GuildBot, user: dict[str, Any]) -> GuildBot:
    state: Any = bot._connection
    data: Any = user
    state.user = discord.ClientUser(state=state, data=data)  # as READY would
    return bot


def _view(guild: discord.Guild) -> dict[str, Any]:
    """What the bot reads of a guild: roles, channels, overwrites and its own permissions."""
    me = guild.me
    return {
        "guild": (guild.id, guild.name, guild.owner_id, guild.member_count),
        "roles": [
            (r.id, r.name, r.position, r.permissions.value, r.colour.value, r.managed, r.hoist)
            for r in guild.roles
        ],
        "bot_role": [r.tags.bot_id if r.tags else None for r in guild.roles],
        "channels": [
            (c.id, c.type, c.name, c.position, c.category_id, me.guild_permissions.value)
            for c in guild.channels
        ],
        "overwrites": [
            sorted((t.id, o.pair()[0].value, o.pair()[1].value) for t, o in c.overwrites.items())
            for c in guild.channels
        ],
        "permissions": [c.permissions_for(me).value for c in guild.channels],
        "me": (me.id, [r.id for r in me.roles], me.top_role.id, me.joined_at, me.nick),
    }


def test_a_guild_rebuilt_from_its_payload_reads_the_same() -> None:
    world = build_world(3, channels=12, roles=6, members=8, seed=5)
    bot_user = payloads.user(world.bot)
    first, second = _with_user(make_bot(), bot_user), _with_user(make_bot(), bot_user)
    for made in world.guilds.values():
        members = list(made.members.values())
        internals.add_guild(first, payloads.guild(world, made, members=members))
    for guild in first.guilds:
        internals.add_guild(second, json.loads(json.dumps(guild_payload(guild))))
    assert len(second.guilds) == 3
    for guild in first.guilds:
        rebuilt = second.get_guild(guild.id)
        assert rebuilt is not None
        assert _view(rebuilt) == _view(guild)
        assert len(rebuilt.members) == 1  # the bot only: it caches no other member


def test_events_of_an_uncached_guild_are_offered_to_hold() -> None:
    bot = make_bot()
    held: list[int] = []
    seen: list[str] = []
    state: Any = bot._connection
    state.parsers["TEST_EVENT"] = lambda data: seen.append(data["n"])

    def hold(guild_id: int, handle: object) -> bool:
        held.append(guild_id)
        return True

    internals.intercept_guild_events(bot, hold)
    state.parsers["TEST_EVENT"]({"guild_id": "42", "n": "held"})
    state.parsers["TEST_EVENT"]({"n": "no guild"})
    assert held == [42]
    assert seen == ["no guild"]
