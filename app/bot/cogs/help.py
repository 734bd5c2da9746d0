"""`help`: the commands the caller may use here, by area, and how to use one of them.

It replaces discord.py's default help (a prefix-only list under "No Category"): it works as
`/help` and `!help`, runs each command's checks for the caller so that members never see
staff commands, and shows a command's usage in the order the documentation gives
(docs/commands.md): the prefix form's order, free text last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args, get_origin

import discord
from discord import app_commands
from discord.ext import commands

from app.bot.cogs import hybrid
from app.bot.cogs.base import GuildCog
from app.bot.errors import Refusal
from app.bot.render import Field, clip, make_embed

Ctx = commands.Context[Any]

#: (module prefix of a cog, the area it is listed under), in the order the list shows them.
AREAS: tuple[tuple[str, str], ...] = (
    ("app.bot.cogs.economy", "Economy"),
    ("app.bot.cogs.levels", "Levels"),
    ("app.bot.cogs.moderation", "Moderation"),
    ("app.bot.cogs.config", "Settings"),
)
#: Commands listed under another area than their cog's: where people look for them.
COMMAND_AREAS = {"profile": "Levels"}
OTHER = "Other"
#: An option with at most this many choices shows them (`add|remove`), as the docs do.
MAX_CHOICES_SHOWN = 4


def area_of(command: commands.Command[Any, ..., Any]) -> str:
    """The area a command is listed under (by the module of its cog, or COMMAND_AREAS)."""
    if command.qualified_name in COMMAND_AREAS:
        return COMMAND_AREAS[command.qualified_name]
    module = type(command.cog).__module__ if command.cog is not None else ""
    return next((area for prefix, area in AREAS if module.startswith(prefix)), OTHER)


def usage(command: commands.Command[Any, ..., Any], *, slash: bool = False) -> str:
    """`name sub option [optional] text`: the command's arguments in the documented order.

    A group's slash form names its fallback subcommand (`config show`).
    """
    words = [command.qualified_name]
    fallback = getattr(command, "fallback", None)
    if slash and fallback:
        words.append(fallback)
    for name, param in command.clean_params.items():
        choices = get_args(param.converter) if get_origin(param.converter) is Literal else ()
        word = "|".join(map(str, choices)) if 0 < len(choices) <= MAX_CHOICES_SHOWN else name
        words.append(word if param.required else f"[{word}]")
    return " ".join(words)


def _permissions(command: commands.Command[Any, ..., Any]) -> str | None:
    """The permissions Discord shows the slash command to ("Ban Members"), if any."""
    slash = getattr(command, "app_command", None)
    while slash is not None and getattr(slash, "default_permissions", None) is None:
        slash = slash.parent
    perms = getattr(slash, "default_permissions", None)
    if not perms:
        return None
    names = [name for name, on in perms if on]
    return ", ".join(n.replace("_", " ").replace("guild", "server").title() for n in names)


def _option_lines(command: commands.Command[Any, ..., Any]) -> list[str]:
    slash = getattr(command, "app_command", None)
    described = {p.name: p.description for p in getattr(slash, "parameters", [])}
    lines = []
    for name, param in command.clean_params.items():
        text = described.get(name) or param.description or ""
        optional = "" if param.required else " (optional)"
        lines.append(f"`{name}`{optional} — {text}".rstrip(" —"))
    return lines


class Help(GuildCog):
    """The bot's own help command."""

    async def cog_load(self) -> None:
        """Take the place of discord.py's default help command."""
        self.bot.help_command = None

    async def usable(self, ctx: Ctx, command: commands.Command[Any, ..., Any]) -> bool:
        """Whether the caller passes every check of `command` here (and it is not hidden)."""
        if command.hidden:
            return False
        try:
            return await command.can_run(ctx)
        except commands.CommandError:
            return False

    @hybrid.command()
    @commands.guild_only()
    @app_commands.describe(command="A command, e.g. transfer or config xp")
    async def help(self, ctx: Ctx, *, command: str | None = None) -> None:
        """The commands you can use here, or how to use one."""
        if command is None:
            embed = await self.overview(ctx)
        else:
            found = self.bot.get_command(command.strip().lstrip("/!").lower())
            if found is None or found.hidden:
                shown = clip(command, 40).replace("`", "'")
                raise Refusal(f"There is no command `{shown}`. `/help` lists those you can use.")
            embed = await self.details(ctx, found)
        await ctx.send(embed=embed, ephemeral=True)

    def _prefix(self, ctx: Ctx) -> str:
        """The prefix the caller used, or the configured one for a slash command."""
        return ctx.clean_prefix if ctx.interaction is None else self.bot.settings.command_prefix

    async def overview(self, ctx: Ctx) -> discord.Embed:
        """Every command the caller may use, by area."""
        by_area: dict[str, list[str]] = {}
        for command in sorted(self.bot.commands, key=lambda c: c.qualified_name):
            if command is ctx.command or not await self.usable(ctx, command):
                continue
            line = f"`/{command.qualified_name}` {command.short_doc}"
            if isinstance(command, commands.Group):
                line += f" ({', '.join(sorted(c.name for c in command.commands))})"
            by_area.setdefault(area_of(command), []).append(line)
        order = [area for _, area in AREAS] + [OTHER]
        fields = [Field(a, "\n".join(by_area[a]), inline=False) for a in order if a in by_area]
        return make_embed(
            "Commands you can use here",
            f"Type them as slash commands (`/balance`) or with `{self._prefix(ctx)}` "
            f"(`{self._prefix(ctx)}balance`).",
            fields=fields,
            footer="/help command shows how to use one",
        )

    async def details(self, ctx: Ctx, command: commands.Command[Any, ..., Any]) -> discord.Embed:
        """One command: its usage in both forms, what it does, its options, who may use it."""
        prefix = self._prefix(ctx)
        forms = f"`/{usage(command, slash=True)}`  or  `{prefix}{usage(command)}`"
        lines = [forms, "", command.help or ""]
        fields = [Field("Options", "\n".join(_option_lines(command)), inline=False)]
        if isinstance(command, commands.Group):
            subs = sorted(command.commands, key=lambda c: c.name)
            fields = [Field("Subcommands", "\n".join(_sub_lines(subs)), inline=False)]
        needs = _permissions(command)
        if needs:
            fields.append(Field("Needs", needs))
        if not await self.usable(ctx, command):
            fields.append(Field("You", "cannot use it here"))
        return make_embed(
            f"Help: {command.qualified_name}",
            "\n".join(lines).strip(),
            fields=[f for f in fields if f.value],
        )


def _sub_lines(subs: Iterable[commands.Command[Any, ..., Any]]) -> list[str]:
    return [f"`/{usage(sub)}` {sub.short_doc}" for sub in subs]
