"""World builders: a small hand-made demo guild and large generated worlds for tests and load."""

from __future__ import annotations

import random
from collections.abc import Iterable

from app.sandbox.permissions import DEFAULT_EVERYONE, MODERATION, P
from app.sandbox.snowflake import HISTORIC_BASE_MS, SnowflakeGenerator, guild_id_for_shard
from app.sandbox.world import (
    CATEGORY,
    TEXT,
    VOICE,
    Channel,
    Guild,
    Member,
    Overwrite,
    Role,
    User,
    World,
    snowflake_iso,
)

#: Permissions of the bot's managed role in every world.
BOT_PERMISSIONS = int(
    P.VIEW_CHANNEL
    | P.SEND_MESSAGES
    | P.EMBED_LINKS
    | P.ATTACH_FILES
    | P.READ_MESSAGE_HISTORY
    | P.ADD_REACTIONS
    | P.USE_EXTERNAL_EMOJIS
    | P.MANAGE_ROLES
    | P.VIEW_AUDIT_LOG
    | MODERATION
)
_ADJECTIVES = [
    "quiet",
    "brave",
    "lucky",
    "misty",
    "amber",
    "cosmic",
    "swift",
    "mellow",
    "rusty",
    "silver",
    "happy",
    "wild",
]
_NOUNS = [
    "otter",
    "falcon",
    "maple",
    "harbor",
    "comet",
    "meadow",
    "lantern",
    "pixel",
    "summit",
    "river",
    "badger",
    "fox",
]
_TOPICS = [
    "general",
    "chat",
    "memes",
    "art",
    "music",
    "gaming",
    "help",
    "news",
    "dev",
    "random",
    "offtopic",
    "media",
]


class WorldFactory:
    """Creates objects with reproducible historic ids inside one :class:`World`."""

    def __init__(self, bot_name: str = "GuildBot") -> None:
        self.ids = SnowflakeGenerator(start_ms=HISTORIC_BASE_MS - 86_400_000)
        bot = User(id=self.ids.next(), username=bot_name, bot=True)
        self.world = World(bot=bot, application_id=bot.id, application_name=bot_name)

    def user(self, username: str, global_name: str | None = None) -> User:
        """A new human user."""
        made = User(id=self.ids.next(), username=username, global_name=global_name)
        self.world.users[made.id] = made
        return made

    def guild(
        self,
        guild_id: int,
        name: str,
        owner: User,
        roles: list[tuple[str, int, int]],
        channels: list[Channel],
        members: Iterable[tuple[User, list[str]]],
    ) -> Guild:
        """Add a guild. ``roles`` are (name, permissions, colour), lowest first; members name
        their roles. The bot joins with a managed role placed just below "Moderator" (or on top
        of the plain roles when there is none)."""
        made = Guild(id=guild_id, name=name, owner_id=owner.id)
        made.roles[guild_id] = Role(
            id=guild_id, name="@everyone", permissions=DEFAULT_EVERYONE, position=0
        )
        names = [r[0] for r in roles]
        bot_at = names.index("Moderator") if "Moderator" in names else len(roles)
        roles = [*roles[:bot_at], (self.world.bot.username, BOT_PERMISSIONS, 0), *roles[bot_at:]]
        by_name: dict[str, Role] = {}
        for position, (role_name, perms, colour) in enumerate(roles, start=1):
            role = Role(
                id=self.ids.next(),
                name=role_name,
                permissions=perms,
                position=position,
                color=colour,
                hoist=perms != 0,
            )
            made.roles[role.id] = by_name[role_name] = role
        bot_role = by_name[self.world.bot.username]
        bot_role.managed, bot_role.bot_id = True, self.world.bot.id
        joined = snowflake_iso(guild_id)
        for user, role_names in [*members, (self.world.bot, [bot_role.name])]:
            made.members[user.id] = Member(
                user=user, roles=[by_name[r].id for r in role_names], joined_at=joined
            )
        self.world.add_guild(made, channels)
        made.system_channel_id = next((c.id for c in channels if c.type == TEXT), None)
        return made

    def channel(
        self,
        name: str,
        kind: int = TEXT,
        position: int = 0,
        parent: Channel | None = None,
        overwrites: list[Overwrite] | None = None,
    ) -> Channel:
        """A guild channel not yet attached to a guild."""
        return Channel(
            id=self.ids.next(),
            type=kind,
            name=name,
            position=position,
            parent_id=parent.id if parent else None,
            overwrites=overwrites or [],
        )


def demo_world() -> World:
    """One guild "Demo" for the console and examples.

    Members (username: roles): owner (guild owner, Admin), admin: Admin, moderator: Moderator
    and Member, alice / bob / carol: Member, GuildBot: its managed role. Role order from the
    top: Admin (administrator), Moderator (kick, ban, moderate members, manage messages and
    nicknames, view audit log), GuildBot (the bot: send, embed, attach, manage roles and the
    moderation permissions), Member (no extra permissions), @everyone (Discord's defaults).
    The bot can therefore moderate alice, bob and carol but not moderator, admin or owner.
    Channels: #general, #modlog (hidden from @everyone, visible to Moderator and the bot),
    #announcements (only Admin may send; the bot may not).
    """
    f = WorldFactory()
    people = {
        n: f.user(n, n.capitalize())
        for n in ("owner", "admin", "moderator", "alice", "bob", "carol")
    }
    guild_id = f.ids.next()
    category = f.channel("Text Channels", CATEGORY)
    general = f.channel("general", TEXT, 1, category)
    modlog = f.channel("modlog", TEXT, 2, category)
    announcements = f.channel("announcements", TEXT, 3, category)
    roles = [
        ("Member", 0, 0x2ECC71),
        ("Moderator", MODERATION, 0x3498DB),
        ("Admin", int(P.ADMINISTRATOR), 0xE67E22),
    ]
    members = [
        (people["owner"], ["Admin"]),
        (people["admin"], ["Admin"]),
        (people["moderator"], ["Moderator", "Member"]),
        *((people[n], ["Member"]) for n in ("alice", "bob", "carol")),
    ]
    guild = f.guild(
        guild_id,
        "Demo",
        people["owner"],
        roles,
        [category, general, modlog, announcements],
        members,
    )
    by_name = {r.name: r.id for r in guild.roles.values()}
    view = int(P.VIEW_CHANNEL)
    modlog.overwrites = [
        Overwrite(guild.id, 0, deny=view),
        Overwrite(by_name["Moderator"], 0, allow=view),
        Overwrite(by_name[f.world.bot.username], 0, allow=view | int(P.SEND_MESSAGES)),
    ]
    announcements.overwrites = [
        Overwrite(guild.id, 0, deny=int(P.SEND_MESSAGES)),
        Overwrite(by_name["Admin"], 0, allow=int(P.SEND_MESSAGES)),
    ]
    return f.world


def build_world(
    n_guilds: int,
    channels: int = 50,
    roles: int = 30,
    members: int = 100,
    seed: int = 0,
    *,
    shard_count: int | None = None,
) -> World:
    """A reproducible world of ``n_guilds`` guilds shaped like real communities.

    Each guild has ``channels`` channels (one category per ten, every fifth a voice channel, the
    first text channel "general", the second "modlog" hidden from @everyone), ``roles`` roles
    counting @everyone (Admin and Moderator on top, the bot's role just below Moderator, the rest
    cosmetic) and ``members`` members counting the bot (the first is the owner). Users are shared
    between guilds. With ``shard_count`` guild ``i`` lands on shard ``i % shard_count``.
    """
    rng = random.Random(seed)
    f = WorldFactory()
    humans = max(members - 1, 1)
    pool = [
        f.user(f"{rng.choice(_ADJECTIVES)}_{rng.choice(_NOUNS)}_{i}")
        for i in range(humans * min(n_guilds, 4))
    ]
    count = shard_count or 1
    for index in range(n_guilds):
        guild_id = guild_id_for_shard(index % count, count, index // count)
        name = f"{rng.choice(_ADJECTIVES).title()} {rng.choice(_NOUNS).title()} {index}"
        cosmetic = [(f"Role {r}", 0, rng.randrange(0xFFFFFF)) for r in range(max(roles - 4, 0))]
        role_specs = [
            *cosmetic,
            ("Moderator", MODERATION, 0x3498DB),
            ("Admin", int(P.ADMINISTRATOR), 0xE67E22),
        ]
        chosen = rng.sample(pool, min(humans, len(pool)))
        cosmetic_names = [r[0] for r in cosmetic]
        assigned = [(u, _member_roles(rng, cosmetic_names, i)) for i, u in enumerate(chosen)]
        made = f.guild(guild_id, name, chosen[0], role_specs, _channels(f, rng, channels), assigned)
        modlog = f.world.text_channels(made)[1:2]
        for channel in modlog:
            channel.name = "modlog"
            channel.overwrites = [Overwrite(made.id, 0, deny=int(P.VIEW_CHANNEL))]
    return f.world


def _member_roles(rng: random.Random, cosmetic: list[str], i: int) -> list[str]:
    """Up to three cosmetic roles; the owner (i == 0) and ~1% are Admin, two and ~2% Moderator."""
    draw = rng.random()
    names = (
        {cosmetic[int(rng.random() * len(cosmetic))] for _ in range(int(draw * 4))}
        if cosmetic
        else set()
    )
    extra = "Admin" if i == 0 or draw > 0.99 else "Moderator" if i < 3 or draw < 0.02 else None
    return [*names, *([extra] if extra else [])]


def _channels(f: WorldFactory, rng: random.Random, total: int) -> list[Channel]:
    made: list[Channel] = []
    category: Channel | None = None
    text_seen = 0
    for position in range(total):
        if position % 10 == 0 and total > 1:
            category = f.channel(f"Category {position // 10}", CATEGORY, position)
            made.append(category)
            continue
        if position % 5 == 4:
            made.append(f.channel(f"voice-{position}", VOICE, position, category))
            continue
        name = "general" if text_seen == 0 else f"{rng.choice(_TOPICS)}-{position}"
        text_seen += 1
        made.append(f.channel(name, TEXT, position, category))
    return made
