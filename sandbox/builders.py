"""World builders: a small hand-made demo guild and large generated worlds for tests and load."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sandbox.generated import STAFF_ROLES, GuildPlan
from sandbox.lazy_world import make_lazy
from sandbox.permissions import DEFAULT_EVERYONE, MODERATION, P
from sandbox.snowflake import HISTORIC_BASE_MS, SnowflakeGenerator
from sandbox.world import (
    CATEGORY,
    TEXT,
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


class WorldFactory:
    """Creates objects with reproducible historic ids inside one :class:`World`, or with
    ``world`` set, adds to that world with ids from its own clock (``world.ids``)."""

    def __init__(self, bot_name: str = "GuildBot", *, world: World | None = None) -> None:
        if world is not None:
            self.ids, self.world = world.ids, world
            return
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
        by_name = self.add_roles(made, roles, self.ids.next)
        joined = snowflake_iso(guild_id)
        for user, role_names in [*members, (self.world.bot, [self.world.bot.username])]:
            made.members[user.id] = Member(
                user=user, roles=[by_name[r].id for r in role_names], joined_at=joined
            )
        return self.attach(made, channels)

    def small_guild(self, name: str, owner_name: str) -> Guild:
        """A small guild shaped like a generated one: #general, @everyone, Moderator and Admin
        (the bot's role between them), a new user ``owner_name`` owning it as Admin, and the bot."""
        guild_id, owner = self.ids.next(), self.user(owner_name)
        general = self.channel("general")
        return self.guild(guild_id, name, owner, list(STAFF_ROLES), [general], [(owner, ["Admin"])])

    def add_roles(
        self, guild: Guild, roles: list[tuple[str, int, int]], ids: Callable[[], int]
    ) -> dict[str, Role]:
        """Give ``guild`` @everyone, ``roles`` (lowest first) and the bot's managed role just
        below "Moderator" (or on top); returns the roles by name. ``ids()`` gives each role id."""
        guild.roles[guild.id] = Role(
            id=guild.id, name="@everyone", permissions=DEFAULT_EVERYONE, position=0
        )
        names = [r[0] for r in roles]
        bot_at = names.index("Moderator") if "Moderator" in names else len(roles)
        roles = [*roles[:bot_at], (self.world.bot.username, BOT_PERMISSIONS, 0), *roles[bot_at:]]
        by_name: dict[str, Role] = {}
        for position, (role_name, perms, colour) in enumerate(roles, start=1):
            role = Role(ids(), role_name, perms, position, colour, hoist=perms != 0)
            guild.roles[role.id] = by_name[role_name] = role
        bot_role = by_name[self.world.bot.username]
        bot_role.managed, bot_role.bot_id = True, self.world.bot.id
        return by_name

    def attach(self, guild: Guild, channels: list[Channel]) -> Guild:
        """Register ``guild`` (its members set) with its channels; the first text channel is
        its system channel."""
        self.world.add_guild(guild, channels)
        guild.system_channel_id = next((c.id for c in channels if c.type == TEXT), None)
        return guild

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


def grow_world(world: World, count: int, name_prefix: str = "grown") -> list[Guild]:
    """Add ``count`` small guilds (:meth:`WorldFactory.small_guild`) to ``world``, as guilds the
    bot joins while it runs: ids from the world's clock, named ``"<name_prefix> <number>"``."""
    if count < 0:
        raise ValueError("count must not be negative")
    f = WorldFactory(world=world)
    made: list[Guild] = []
    for _ in range(count):
        number = len(world.guilds) + 1
        made.append(f.small_guild(f"{name_prefix} {number}", f"{name_prefix}_owner_{number}"))
    return made


def build_world(
    n_guilds: int,
    channels: int = 50,
    roles: int = 30,
    members: int = 100,
    seed: int = 0,
    *,
    shard_count: int | None = None,
    lazy: bool = False,
) -> World:
    """A reproducible world of ``n_guilds`` guilds shaped like real communities.

    Each guild has ``channels`` channels (one category per ten, every fifth a voice channel, the
    first text channel "general", the second "modlog" hidden from @everyone), ``roles`` roles
    counting @everyone (Admin and Moderator on top, the bot's role just below Moderator, the rest
    cosmetic) and ``members`` members counting the bot (the first is the owner). Users are shared
    between guilds. With ``shard_count`` guild ``i`` lands on shard ``i % shard_count``.

    With ``lazy`` a guild is only built when first looked up (see :mod:`sandbox.lazy_world`):
    the same guilds, in a fraction of the time and memory while few are touched.
    """
    f = WorldFactory()
    plan = GuildPlan.create(f, n_guilds, channels, roles, members, seed, shard_count)
    if lazy:
        make_lazy(f.world, plan)
    else:
        for index in range(n_guilds):
            plan.make(index)
    return f.world
