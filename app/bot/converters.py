"""Command arguments read whole, and refused when they are unclear.

Each converter here is at once a prefix converter (the text typed after `!command`) and a slash
transformer (Discord's typed option), so one annotation gives both forms the same rules. The
names at the bottom are what commands annotate with; for the type checker they are the values
the command receives.

The rules (docs/commands.md shows them to members):
- A member is a mention, an id, or the exact username of one member. A nickname or display
  name is never enough (anyone can take one); when a name fits nobody, the reply lists a few
  members it may have meant.
- A user (ban, unban, modlog) follows the same rules and, by mention or id, need not be in the
  server.
- A duration reads as many words as form one duration ("1h 30m", "1 day 12 hours"); a word
  after it that starts with a digit is refused, not guessed.
- In a prefix `ban` an optional duration comes first, then `delete:N` (or `--delete N`); a
  bare number is refused.
- A channel must resolve to one text channel; `config modlog` clears only with `off`.
- A modlog filter is a kind of case, singular or plural; anything else is refused.
- Extra words after the last argument are refused (GuildCog sets ignore_extra=False), and no
  optional argument is skipped when a word does not fit it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.discord_internals import give_back, skip_to, words_ahead
from app.bot.durations import (
    HINT,
    MAX_WORDS,
    looks_like_duration,
    parse_duration,
    read_duration,
    shown,
)
from app.bot.errors import Refusal
from app.domain.types import CaseAction

Ctx = commands.Context[Any]
Transformer = app_commands.Transformer[Any]

#: A user mention or a bare id (snowflakes have 15 to 20 digits).
_USER_REF = re.compile(r"<@!?(\d{15,20})>|(\d{15,20})")
_CHANNEL_REF = re.compile(r"<#(\d{15,20})>|(\d{15,20})")
#: Discord usernames: at most 32 characters.
MAX_NAME = 32
#: Members asked for when looking up a name (Discord's most for one query).
NAME_QUERY_LIMIT = 100
MAX_CANDIDATES = 4
MAX_DELETE_DAYS = 7
_DELETE_FLAG = re.compile(r"(?:--)?delete[:=](\d{1,4})", re.IGNORECASE)
_DELETE_OPTION = "--delete"
BAN_HINT = (
    "Use a duration like 7d or 2h (a number needs its unit); to delete their messages "
    "write delete:3 after it."
)
OFF_WORDS = frozenset({"off", "none"})
#: Names a modlog filter accepts for each kind of case, besides the action's own name.
_ACTION_ALIASES = {"warning": CaseAction.WARN}


class NotUnique(commands.BadArgument):
    """A name that does not pick out exactly one member (or channel)."""


# -- members and users ---------------------------------------------------------------------
def referenced_id(text: str, pattern: re.Pattern[str] = _USER_REF) -> int | None:
    """The id in a mention or a bare id; None for anything else (a name)."""
    match = pattern.fullmatch(text.strip())
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def _who(member: discord.Member) -> str:
    """The username to type and the name others see: `helper` (shown as “bob”)."""
    seen = member.nick or member.global_name
    extra = f" (shown as “{shown(seen)}”)" if seen and seen != member.name else ""
    return f"`{member.name}`{extra}"


def _listing(members: Iterable[discord.Member]) -> str:
    chosen = list(members)[:MAX_CANDIDATES]
    return ", ".join(_who(m) for m in chosen)


def pick_by_username(name: str, found: Sequence[discord.Member]) -> discord.Member:
    """The one member of `found` whose username is `name` (case-insensitive).

    Nicknames and global names do not count: anyone can take "bob" as a nickname. When no
    member or several match, NotUnique lists a few candidates.
    """
    wanted = name.casefold()
    exact = [m for m in found if m.name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise NotUnique(
            f"Several members have the username `{shown(name)}`: {_listing(exact)}. "
            "Use a mention or an id."
        )
    similar = [
        m
        for m in found
        if wanted in {(m.nick or "").casefold(), (m.global_name or "").casefold()}
        or m.name.casefold().startswith(wanted)
    ]
    guess = f" Did you mean {_listing(similar)}?" if similar else ""
    raise NotUnique(
        f"No member has the username `{shown(name)}`.{guess} "
        "Use a mention, an id or the exact username."
    )


async def member_named(guild: discord.Guild, text: str) -> discord.Member:
    """The member whose username is `text` (an optional leading @ is ignored)."""
    name = text.strip().removeprefix("@")
    if not name or len(name) > MAX_NAME:
        raise commands.MemberNotFound(text)
    try:
        found = await guild.query_members(name, limit=NAME_QUERY_LIMIT, cache=False)
    except (TimeoutError, discord.ClientException) as error:
        raise Refusal("I could not look up members just now; use a mention or an id.") from error
    return pick_by_username(name, found)


def _mentioned_member(ctx: Ctx, user_id: int) -> discord.Member | None:
    """The member as the message's own mention data carries it (saves a REST call)."""
    if ctx.interaction is not None:
        return None
    return next(
        (m for m in ctx.message.mentions if m.id == user_id and isinstance(m, discord.Member)),
        None,
    )


async def find_member(ctx: Ctx, text: str) -> discord.Member:
    """A member of the command's server named by mention, id or exact username."""
    guild = ctx.guild
    if guild is None:
        raise commands.NoPrivateMessage()
    user_id = referenced_id(text)
    if user_id is None:
        return await member_named(guild, text)
    member = guild.get_member(user_id) or _mentioned_member(ctx, user_id)
    if member is not None:
        return member
    try:
        return await guild.fetch_member(user_id)
    except discord.NotFound:
        raise commands.MemberNotFound(text) from None


async def find_user(ctx: Ctx, text: str) -> discord.Member | discord.User:
    """Like find_member, but a mention or id may name someone who is not in the server."""
    user_id = referenced_id(text)
    if user_id is None:
        return await find_member(ctx, text)
    try:
        return await find_member(ctx, text)
    except commands.MemberNotFound:
        pass
    try:
        user: discord.User = await ctx.bot.fetch_user(user_id)
    except discord.NotFound:
        raise commands.UserNotFound(text) from None
    return user


class _UserOption(Transformer):
    """A slash option of Discord's user type."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        """Discord's member picker."""
        return discord.AppCommandOptionType.user


class MemberConverter(commands.Converter[discord.Member], _UserOption):
    """A member of this server: mention, id or exact username (slash: Discord's picker)."""

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> discord.Member:
        """The picked member; someone who is not in the server is refused."""
        if not isinstance(value, discord.Member):
            raise commands.MemberNotFound(str(value))
        return value

    async def convert(self, ctx: Ctx, argument: str) -> discord.Member:
        """Resolve the prefix argument (see find_member)."""
        return await find_member(ctx, argument)


class UserConverter(commands.Converter[discord.Member | discord.User], _UserOption):
    """A member, or by mention or id any Discord user (ban, unban, modlog)."""

    async def transform(
        self, interaction: discord.Interaction, value: Any, /
    ) -> discord.Member | discord.User:
        """The picked user, in the server or not."""
        if not isinstance(value, discord.Member | discord.User):
            raise commands.UserNotFound(str(value))
        return value

    async def convert(self, ctx: Ctx, argument: str) -> discord.Member | discord.User:
        """Resolve the prefix argument (see find_user)."""
        return await find_user(ctx, argument)


class ExportScopeConverter(UserConverter):
    """modlog-export's member, where the prefix word `all` means every case of the server."""

    async def convert(self, ctx: Ctx, argument: str) -> discord.Member | discord.User | None:  # type: ignore[override]  # None = all
        """`all` is None (the whole server); anything else names a user."""
        if argument.lower() == "all":
            return None
        return await find_user(ctx, argument)


# -- durations -----------------------------------------------------------------------------
def take_duration(ctx: Ctx, first: str, hint: str) -> timedelta:
    """The duration starting at the prefix argument `first`, reading on as far as it goes."""
    ahead = words_ahead(ctx, MAX_WORDS)
    duration, used = read_duration([first, *(word for word, _ in ahead)], hint)
    if used > 1:
        skip_to(ctx, ahead[used - 2][1])
    return duration


class DurationConverter(commands.Converter[timedelta], Transformer):
    """A duration: a text option in slash, one or more words in prefix ("1h 30m")."""

    hint = HINT

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> timedelta:
        """Parse the whole option."""
        return parse_duration(str(value), self.hint)

    async def convert(self, ctx: Ctx, argument: str) -> timedelta:
        """Read the duration from the prefix words."""
        return take_duration(ctx, argument, self.hint)


class BanDurationConverter(DurationConverter):
    """ban's optional duration: in prefix, present only when the word starts with a digit."""

    hint = BAN_HINT

    async def convert(self, ctx: Ctx, argument: str) -> timedelta | None:  # type: ignore[override]  # None = no duration
        """None (and the word left for the next argument) unless it starts with a digit."""
        if not looks_like_duration(argument):
            give_back(ctx)
            return None
        return take_duration(ctx, argument, self.hint)


def read_delete_flag(ctx: Ctx, argument: str) -> int | None:
    """Days from `delete:N`, `delete=N` or `--delete N`; None when `argument` is no such flag."""
    match = _DELETE_FLAG.fullmatch(argument)
    if match is not None:
        days = match.group(1)
    elif argument.lower() == _DELETE_OPTION:
        ahead = words_ahead(ctx, 1)
        if not ahead or not ahead[0][0].isdigit():
            raise commands.BadArgument("Write the days after --delete, e.g. `--delete 3`.")
        days = ahead[0][0]
        skip_to(ctx, ahead[0][1])
    else:
        return None
    if not 0 <= int(days) <= MAX_DELETE_DAYS:
        raise commands.BadArgument(f"delete takes 0 to {MAX_DELETE_DAYS} days.")
    return int(days)


class DeleteDaysConverter(commands.Converter[int | None], Transformer):
    """ban's delete_days: a 0-7 option in slash, only the `delete:N` flag in prefix."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        """A whole number."""
        return discord.AppCommandOptionType.integer

    @property
    def min_value(self) -> int:
        """No deletion."""
        return 0

    @property
    def max_value(self) -> int:
        """Discord deletes at most 7 days of messages."""
        return MAX_DELETE_DAYS

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> int:
        """The option as given (Discord enforced the range)."""
        return int(value)

    async def convert(self, ctx: Ctx, argument: str) -> int | None:
        """The flag's days; any other word is left for the reason."""
        days = read_delete_flag(ctx, argument)
        if days is None:
            give_back(ctx)
            return None
        following = words_ahead(ctx, 1)
        if following and looks_like_duration(following[0][0]):
            raise commands.BadArgument(
                f"`{shown(following[0][0])}` after `{shown(argument)}`: put the duration "
                "before delete, and start the reason with a word."
            )
        return days


# -- modlog filters ------------------------------------------------------------------------
def action_named(word: str) -> CaseAction | None:
    """The kind of case a filter word names: "ban", "bans", "warnings"...; None if none."""
    text = word.strip().lower()
    for candidate in (text, text.removesuffix("s")):
        if candidate in _ACTION_ALIASES:
            return _ACTION_ALIASES[candidate]
        try:
            return CaseAction(candidate)
        except ValueError:
            continue
    return None


class ActionFilterConverter(commands.Converter[CaseAction | None], Transformer):
    """modlog's action filter: a choice in slash, a kind of case (or its plural) in prefix.

    In prefix a mention or id in its place is left for the moderator filter, so
    `!modlog @carol @mod` filters by moderator; any other word is refused.
    """

    @property
    def choices(self) -> list[app_commands.Choice[int | float | str]]:
        """Every kind of case."""
        return [app_commands.Choice(name=a.value, value=a.value) for a in CaseAction]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> CaseAction:
        """The chosen kind."""
        return CaseAction(str(value))

    async def convert(self, ctx: Ctx, argument: str) -> CaseAction | None:
        """The kind of case named, None for a user reference, else refused."""
        found = action_named(argument)
        if found is not None:
            return found
        if referenced_id(argument) is not None:
            give_back(ctx)
            return None
        kinds = ", ".join(a.value for a in CaseAction)
        raise commands.BadArgument(
            f"`{shown(argument)}` is not a kind of case. Filter by one of {kinds} "
            "(plurals such as bans work too)."
        )


# -- channels ------------------------------------------------------------------------------
def channel_named(guild: discord.Guild, text: str) -> discord.TextChannel:
    """The one text channel named by mention, id or exact name (a leading # is ignored)."""
    channel_id = referenced_id(text, _CHANNEL_REF)
    if channel_id is not None:
        found = guild.get_channel(channel_id)
        if isinstance(found, discord.TextChannel):
            return found
        raise commands.ChannelNotFound(text)
    name = text.strip().removeprefix("#").lower()
    same = [c for c in guild.text_channels if c.name.lower() == name]
    if len(same) == 1:
        return same[0]
    if same:
        listed = ", ".join(c.mention for c in same[:MAX_CANDIDATES])
        raise NotUnique(f"Several channels are called `{shown(name)}`: {listed}. Use a mention.")
    raise commands.ChannelNotFound(text)


class TextChannelConverter(commands.Converter[discord.TextChannel], Transformer):
    """A text channel: Discord's channel picker in slash; mention, id or exact name in prefix."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        """Discord's channel picker."""
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        """Text and announcement channels."""
        return [discord.ChannelType.text, discord.ChannelType.news]

    async def transform(
        self, interaction: discord.Interaction, value: Any, /
    ) -> discord.TextChannel:
        """The picked channel as this server's cache holds it."""
        guild = interaction.guild
        found = guild.get_channel(value.id) if guild is not None else None
        if not isinstance(found, discord.TextChannel):
            raise commands.ChannelNotFound(str(value.id))
        return found

    async def convert(self, ctx: Ctx, argument: str) -> discord.TextChannel:
        """Resolve the prefix argument (see channel_named)."""
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        return channel_named(ctx.guild, argument)


class ChannelOrOffConverter(TextChannelConverter):
    """config modlog's channel: in prefix also the word `off` (or `none`), meaning no channel."""

    async def convert(self, ctx: Ctx, argument: str) -> discord.TextChannel | None:  # type: ignore[override]  # None = off
        """None for `off`, else the channel (refused when it cannot be found)."""
        if argument.strip().lower() in OFF_WORDS:
            return None
        return await super().convert(ctx, argument)


def _slash_only_default(ctx: Ctx) -> None:
    if ctx.interaction is None:
        raise Refusal("Name a channel, or write `off` to stop.")


#: The default of an argument that slash may leave out (meaning none) but prefix must type
#: (`off`), so that a missing or mistyped word never clears a setting.
SLASH_ONLY_DEFAULT: Any = commands.parameter(default=_slash_only_default)


# -- what commands annotate with -------------------------------------------------------------
if TYPE_CHECKING:
    MemberArg = discord.Member
    OptionalMember = discord.Member | None
    UserArg = discord.Member | discord.User
    OptionalUser = discord.Member | discord.User | None
    ExportScope = discord.Member | discord.User | None
    Duration = timedelta
    BanDuration = timedelta | None
    DeleteDays = int | None
    ActionFilter = CaseAction | None
    TextChannelArg = discord.TextChannel
    OptionalChannel = discord.TextChannel | None
    ChannelOrOff = discord.TextChannel | None
else:
    # Not Optional[...] at run time: discord.py skips an Optional argument that fails to
    # convert, which is how "!profile <unknown id>" used to show your own profile.
    MemberArg = OptionalMember = MemberConverter
    UserArg = OptionalUser = UserConverter
    ExportScope = ExportScopeConverter
    Duration = DurationConverter
    BanDuration = BanDurationConverter
    DeleteDays = DeleteDaysConverter
    ActionFilter = ActionFilterConverter
    TextChannelArg = OptionalChannel = TextChannelConverter
    ChannelOrOff = ChannelOrOffConverter
