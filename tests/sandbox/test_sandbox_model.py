"""Pure model tests: snowflakes, permissions, world builders, payloads, parsing, intents."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import build_world, demo_world
from sandbox.console_parse import parse_directive, parse_slash
from sandbox.intents import GUILD_MESSAGES, MESSAGE_CONTENT, filter_event
from sandbox.payloads import guild as guild_payload
from sandbox.permissions import ALL, P, channel_permissions, has, outranks
from sandbox.snowflake import SnowflakeGenerator, guild_id_for_shard, shard_for


@pytest.mark.parametrize("count", [1, 2, 3, 4, 16])
def test_guild_ids_land_on_the_chosen_shard(count: int) -> None:
    ids = {guild_id_for_shard(s, count, i) for s in range(count) for i in range(5)}
    assert len(ids) == 5 * count
    for shard in range(count):
        assert shard_for(guild_id_for_shard(shard, count, 3), count) == shard


def test_snowflakes_are_monotonic_and_unique() -> None:
    gen = SnowflakeGenerator(start_ms=1_600_000_000_000)
    ids = [gen.next() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_demo_world_permissions_and_hierarchy() -> None:
    world = demo_world()
    guild = world.guild("Demo")
    member = {n: world.member(guild, n) for n in ("owner", "admin", "moderator", "alice")}
    bot = guild.members[world.bot.id]
    modlog, general = world.channel(guild, "#modlog"), world.channel(guild, "general")
    announcements = world.channel(guild, "announcements")
    assert channel_permissions(guild, modlog, member["alice"]) == 0
    assert has(guild, member["moderator"], P.VIEW_CHANNEL, modlog)
    assert has(guild, bot, P.SEND_MESSAGES, modlog)
    assert not has(guild, bot, P.SEND_MESSAGES, announcements)
    assert channel_permissions(guild, general, member["admin"]) == ALL
    assert outranks(guild, bot, member["alice"])
    assert not outranks(guild, bot, member["moderator"])
    assert not outranks(guild, member["admin"], member["owner"])
    member["alice"].communication_disabled_until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert not has(guild, member["alice"], P.SEND_MESSAGES, general)
    assert has(guild, member["alice"], P.VIEW_CHANNEL, general)


def test_build_world_shape_and_shards() -> None:
    world = build_world(8, channels=12, roles=6, members=20, seed=7, shard_count=4)
    assert sorted(shard_for(g, 4) for g in world.guilds) == [0, 0, 1, 1, 2, 2, 3, 3]
    for guild in world.guilds.values():
        assert len(guild.channel_ids) == 12 and len(guild.roles) == 6
        assert len(guild.members) == 20 and world.bot.id in guild.members
        assert [c.name for c in world.text_channels(guild)][:2] == ["general", "modlog"]
        payload = guild_payload(world, guild, members=list(guild.members.values()))
        assert payload["member_count"] == 20 and len(payload["channels"]) == 12
        assert payload["owner_id"] == str(guild.owner_id)
    assert build_world(3, seed=1).guilds.keys() == build_world(3, seed=1).guilds.keys()


def test_parse_slash_positional_named_and_subcommands() -> None:
    transfer = {
        "name": "transfer",
        "options": [
            {"name": "member", "type": 6},
            {"name": "amount", "type": 4},
            {"name": "note", "type": 3},
        ],
    }
    call = parse_slash(transfer, ["@bob", "50", "for", "lunch"])
    assert call.options == {"member": "@bob", "amount": "50", "note": "for lunch"}
    assert parse_slash(transfer, ["amount:5", "carol"]).options == {
        "amount": "5",
        "member": "carol",
    }
    mod = {
        "name": "mod",
        "options": [
            {
                "name": "timeout",
                "type": 1,
                "options": [{"name": "member", "type": 6}, {"name": "days", "type": 4}],
            }
        ],
    }
    call = parse_slash(mod, ["timeout", "bob", "3"])
    assert (call.sub, call.options) == ("timeout", {"member": "bob", "days": "3"})
    with pytest.raises(ValueError, match="subcommand"):
        parse_slash(mod, ["bob"])
    with pytest.raises(ValueError, match="too many"):
        parse_slash({"name": "x", "options": [{"name": "n", "type": 4}]}, ["1", "2"])


def test_parse_directives() -> None:
    expect = parse_directive('expect "100 coins"')
    assert expect is not None and expect.text == "100 coins"
    found = parse_directive('expect-dm @bob "warned"')
    assert found is not None and (found.kind, found.user, found.text) == (
        "expect-dm",
        "bob",
        "warned",
    )
    assert parse_directive("/balance") is None


def test_message_content_needs_the_intent_unless_mentioned() -> None:
    data = {"content": "secret", "author": {"id": "1"}, "mentions": [], "embeds": [{"a": 1}]}
    redacted = filter_event(GUILD_MESSAGES, "MESSAGE_CREATE", data, 5, bot_id=9)
    assert redacted is not None and redacted["content"] == "" and redacted["embeds"] == []
    full = filter_event(GUILD_MESSAGES | MESSAGE_CONTENT, "MESSAGE_CREATE", data, 5, bot_id=9)
    assert full is not None and full["content"] == "secret"
    mention = {**data, "mentions": [{"id": "9"}]}
    mentioned = filter_event(GUILD_MESSAGES, "MESSAGE_CREATE", mention, 5, 9)
    assert mentioned is not None and mentioned["content"] == "secret"
    assert filter_event(0, "MESSAGE_CREATE", data, 5, 9) is None
