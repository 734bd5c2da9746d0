"""Sandbox worlds for the bot tests: communities with owners, admins, moderators and members."""

from __future__ import annotations

from sandbox.builders import WorldFactory
from sandbox.permissions import MODERATION, P
from sandbox.snowflake import guild_id_for_shard
from sandbox.world import TEXT, Overwrite, World

STAFF = ("owner", "admin", "mod", "mod2", "helper")
ROLES = [
    ("Member", 0, 0x2ECC71),
    ("Helper", int(P.ADMINISTRATOR), 0x1ABC9C),
    ("Trial", int(P.MODERATE_MEMBERS), 0x9B59B6),
    ("Moderator", MODERATION, 0x3498DB),
    ("Admin", int(P.ADMINISTRATOR), 0xE67E22),
]


def member_names(count: int) -> list[str]:
    """m1, m2, ... plain members."""
    return [f"m{i}" for i in range(1, count + 1)]


def community_world(shards: list[tuple[int, int]] | None = None, members: int = 30) -> World:
    """One guild per (shard_id, shard_count) pair, each on that shard, with the same people.

    Roles from the top: Admin (owner, admin), Moderator (mod, mod2), the bot's role, Trial
    (trial: Moderate Members only), Helper (helper: Administrator, yet below the bot), Member
    (m1..mN); "otherbot" is another bot with no role. Channels: #general, #modlog (hidden from
    @everyone, open to Moderator and the bot), #levels, #quiet.
    """
    f = WorldFactory()
    people = {name: f.user(name) for name in (*STAFF, *member_names(members))}
    other = f.user("otherbot")
    other.bot = True
    trial = f.user("trial")
    for index, (shard_id, shard_count) in enumerate(shards or [(0, 1)]):
        channels = [
            f.channel(n, TEXT, i) for i, n in enumerate(("general", "modlog", "levels", "quiet"))
        ]
        roster = [
            (people["owner"], ["Admin"]),
            (people["admin"], ["Admin"]),
            (people["mod"], ["Moderator", "Member"]),
            (people["mod2"], ["Moderator", "Member"]),
            (people["helper"], ["Helper"]),
            (other, []),
            (trial, ["Trial", "Member"]),
            *((people[n], ["Member"]) for n in member_names(members)),
        ]
        guild = f.guild(
            guild_id_for_shard(shard_id, shard_count, index),
            f"Guild {index}",
            people["owner"],
            ROLES,
            channels,
            roster,
        )
        by_name = {r.name: r.id for r in guild.roles.values()}
        view, send = int(P.VIEW_CHANNEL), int(P.SEND_MESSAGES)
        channels[1].overwrites = [
            Overwrite(guild.id, 0, deny=view),
            Overwrite(by_name["Moderator"], 0, allow=view),
            Overwrite(by_name[f.world.bot.username], 0, allow=view | send),
        ]
    return f.world
