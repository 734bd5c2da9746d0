"""A guild's cases as CSV and JSON attachments.

Each case carries the names of its member and moderator beside their ids (the display name of
those still in the server, else the last name the bot recorded, else empty) and whether the DM
about it arrived as "yes", "no" or "not sent".
"""

from __future__ import annotations

import gzip
import io
from typing import TYPE_CHECKING

import discord

from app.bot.people import display_names
from app.domain.export import case_row, to_csv, to_json

if TYPE_CHECKING:
    from app.bot.client import GuildBot

#: Above this a file is sent gzip-compressed (Discord's smallest upload limit is 10 MiB).
COMPRESS_ABOVE = 8 * 1024 * 1024


def _file(data: bytes, name: str) -> discord.File:
    if len(data) > COMPRESS_ABOVE:
        return discord.File(io.BytesIO(gzip.compress(data)), filename=f"{name}.gz")
    return discord.File(io.BytesIO(data), filename=name)


async def export_files(
    bot: GuildBot, guild: discord.Guild, target_id: int | None, *, leave_out: int | None = None
) -> tuple[int, list[discord.File]]:
    """(number of cases, [CSV file, JSON file]) for a guild or one member of it.

    The cases about `leave_out` (the reader) are left out.
    """
    services = bot.services
    export = services.moderation.export(guild.id, target_id, leave_out=leave_out)
    cases = [c async for c in export]
    people = {c.target_id for c in cases} | {c.moderator_id for c in cases}
    names = await display_names(services.bank, guild, people)
    rows = [case_row(c, names) for c in cases]
    stem = f"cases-{guild.id}" + (f"-{target_id}" if target_id else "")
    return len(rows), [_file(to_csv(rows), f"{stem}.csv"), _file(to_json(rows), f"{stem}.json")]
