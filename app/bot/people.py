"""Who of a list of ids is still in a server, and the names to show for them.

The bot keeps no member cache (no members intent), so it asks the gateway for the ids it is
about to show (a member request by user ids needs no privileged intent), 100 at a time. Names
of people who left come from what the bank recorded (their last display name seen).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import discord

from app.domain.economy import Bank

log = logging.getLogger(__name__)

#: Ids per gateway member request (Discord's limit).
QUERY_BATCH = 100
#: Most ids looked up live for one answer; the rest are named from the database only.
LIVE_LOOKUP_MAX = 1_000


async def members_among(
    guild: discord.Guild, user_ids: Iterable[int]
) -> dict[int, discord.Member] | None:
    """The members of `guild` among `user_ids`; None when the gateway did not answer.

    At most LIVE_LOOKUP_MAX ids are asked for; ids beyond them count as absent.
    """
    ids = list(dict.fromkeys(user_ids))[:LIVE_LOOKUP_MAX]
    found: dict[int, discord.Member] = {}
    try:
        for start in range(0, len(ids), QUERY_BATCH):
            batch = ids[start : start + QUERY_BATCH]
            members = await guild.query_members(user_ids=batch, limit=len(batch), cache=False)
            found.update((m.id, m) for m in members)
    except (TimeoutError, discord.ClientException) as error:
        log.info("member lookup in guild %s failed: %r", guild.id, error)
        return None
    return found


async def display_names(
    bank: Bank, guild: discord.Guild, user_ids: Iterable[int]
) -> dict[int, str]:
    """A name for each id that has one: the member's display name, else the last one recorded."""
    ids = list(dict.fromkeys(user_ids))
    live = await members_among(guild, ids) or {}
    names = {user_id: member.display_name for user_id, member in live.items()}
    stored = await bank.display_names(guild.id, [i for i in ids if i not in names])
    return {**stored, **names}
