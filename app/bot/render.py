"""Embeds and messages built within Discord's limits, whatever the data holds.

Every text is clipped with an ellipsis to its field's limit, at most 25 fields are kept and the
6000-character total is enforced by dropping fields from the end (with a note) and then
shortening the description. Pages are filled with whole lines until the next one would not fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import discord

TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
TOTAL = 6000
CONTENT = 2000
ELLIPSIS = "…"
_NOTE_ROOM = 32  # room kept in the footer for "N more not shown"

COLOUR_OK = discord.Colour(0x2ECC71)
COLOUR_INFO = discord.Colour(0x3498DB)
COLOUR_WARN = discord.Colour(0xE67E22)
#: Severe actions (bans, kicks); deliberately not one of the reds that mark an error reply.
COLOUR_SEVERE = discord.Colour(0xA84300)


def clip(text: object, limit: int) -> str:
    """`text` as a string of at most `limit` characters; cut text ends with an ellipsis."""
    value = str(text)
    if len(value) <= limit:
        return value
    return value[: max(limit - 1, 0)] + ELLIPSIS if limit > 0 else ""


def one_line(text: object, limit: int) -> str:
    """`text` on a single line (newlines become spaces), clipped to `limit`."""
    return clip(" ".join(str(text).split()), limit)


def content(text: str) -> str:
    """A message content of at most 2000 characters."""
    return clip(text, CONTENT)


def timestamp(moment: datetime | None, style: str = "f") -> str:
    """Discord's <t:…> markup that each reader sees in their own time zone."""
    if moment is None:
        return "—"
    return f"<t:{int(moment.timestamp())}:{style}>"


@dataclass(frozen=True, slots=True)
class Field:
    """One embed field before clipping."""

    name: str
    value: str
    inline: bool = True


def embed_size(embed: discord.Embed) -> int:
    """Characters that count towards Discord's 6000 limit."""
    size = len(embed.title or "") + len(embed.description or "")
    size += sum(len(f.name or "") + len(f.value or "") for f in embed.fields)
    size += len(embed.footer.text or "") + len(embed.author.name or "")
    return size


def make_embed(
    title: str,
    description: str = "",
    *,
    fields: Iterable[Field] = (),
    footer: str | None = None,
    colour: discord.Colour = COLOUR_INFO,
) -> discord.Embed:
    """An embed that respects every limit, however long the inputs are."""
    embed = discord.Embed(
        title=clip(title, TITLE), description=clip(description, DESCRIPTION) or None, colour=colour
    )
    footer_text = clip(footer, FOOTER - _NOTE_ROOM) if footer else ""
    wanted = list(fields)
    kept = [
        Field(clip(f.name or "\u200b", FIELD_NAME), clip(f.value or "—", FIELD_VALUE), f.inline)
        for f in wanted[:FIELDS]
    ]
    fixed = embed_size(embed) + len(footer_text) + _NOTE_ROOM
    while kept and fixed + sum(len(f.name) + len(f.value) for f in kept) > TOTAL:
        kept.pop()
    for item in kept:
        embed.add_field(name=item.name, value=item.value, inline=item.inline)
    if len(kept) < len(wanted):
        note = f"{len(wanted) - len(kept)} more not shown"
        footer_text = f"{footer_text} · {note}" if footer_text else note
    if footer_text:
        embed.set_footer(text=footer_text)
    excess = embed_size(embed) - TOTAL
    if excess > 0 and embed.description:
        embed.description = clip(embed.description, max(len(embed.description) - excess, 1))
    return embed


def fill_lines(lines: Sequence[str], limit: int = DESCRIPTION) -> tuple[str, int]:
    """Join as many whole lines as fit in `limit` characters; returns (text, lines used).

    A single line longer than the limit is clipped rather than left out, so a page always
    shows at least one line.
    """
    text = ""
    used = 0
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) > limit:
            if used == 0:
                return clip(line, limit), 1
            break
        text, used = candidate, used + 1
    return text, used


def mention(user_id: int) -> str:
    """A user mention; replies never ping it (the bot's allowed_mentions is none)."""
    return f"<@{user_id}>"


def amount(value: int, currency: str) -> str:
    """An amount in the server's currency, with thousands separators: "1,234 coins", "1 coin".

    The name is used as the server configured it; for exactly one, a name ending in a single
    "s" drops it ("1 gem", "1 coin"), and any other name stays as it is ("1 gold").
    """
    name = currency
    if abs(value) == 1 and len(name) > 1 and name.endswith("s") and not name.endswith("ss"):
        name = name[:-1]
    return f"{value:,} {name}"
