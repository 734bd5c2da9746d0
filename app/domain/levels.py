"""Levels from chat activity.

The curve (the one MEE6 made familiar): going from level L to L+1 takes 5L² + 50L + 100 XP,
so level 1 needs 100 XP in all, level 5 needs 1,150 XP and level 10 needs 4,675 XP. A message
earns a random amount in the guild's range, at most once per cooldown (60 s by default) per
member.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from app.coord.cooldowns import Cooldowns
from app.db.models import Member
from app.domain import validation
from app.domain.economy import locked_member
from app.domain.guilds import GuildConfigs

MAX_LEVEL = 10_000


def xp_to_next(level: int) -> int:
    """XP needed to go from `level` to `level + 1`."""
    return 5 * level * level + 50 * level + 100


def xp_for_level(level: int) -> int:
    """Total XP at which `level` is reached (closed form of the sum of xp_to_next)."""
    n = level
    return (5 * (n - 1) * n * (2 * n - 1)) // 6 + 25 * n * (n - 1) + 100 * n


def level_for_xp(xp: int) -> int:
    """The level a member with `xp` total XP has reached."""
    lo, hi = 0, MAX_LEVEL
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if xp_for_level(mid) <= xp:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True, slots=True)
class Progress:
    """A member's level, XP and the XP still missing for the next level."""

    level: int
    xp: int
    into_level: int
    needed: int

    @classmethod
    def of(cls, xp: int) -> Progress:
        """Progress for a total XP."""
        level = level_for_xp(xp)
        into = xp - xp_for_level(level)
        return cls(level, xp, into, xp_to_next(level) - into)


@dataclass(frozen=True, slots=True)
class XpAward:
    """XP earned by one message, and whether it reached a new level."""

    gained: int
    progress: Progress
    previous_level: int

    @property
    def leveled_up(self) -> bool:
        """True when the member reached a higher level with this message."""
        return self.progress.level > self.previous_level


class Levels:
    """XP from chat: the guild's range and cooldown, the no-XP channels, level-ups."""

    def __init__(self, configs: GuildConfigs, cooldowns: Cooldowns) -> None:
        self.configs = configs
        self.cooldowns = cooldowns

    async def award_message_xp(
        self,
        guild_id: int,
        user_id: int,
        channel_id: int,
        rng: random.Random | None = None,
        now: datetime | None = None,
        display_name: str | None = None,
    ) -> XpAward | None:
        """Award XP for a message; None when cooling down or the channel earns no XP.

        `display_name`, the author's name as the message showed it, is recorded with the award
        so that names can still be shown once the member has left (leaderboard, exports).
        """
        validation.snowflake(guild_id, "guild")
        validation.snowflake(user_id, "member")
        config = await self.configs.cached(guild_id)
        if channel_id in config.no_xp_channel_ids or not config.xp_enabled:
            return None
        cooldown = timedelta(seconds=config.xp_cooldown_s)
        key = f"xp:{guild_id}:{user_id}"
        if not await self.cooldowns.try_start(key, cooldown.total_seconds()):
            return None
        now = now or datetime.now(UTC)
        gained = (rng or random).randint(config.xp_min, config.xp_max)
        async with in_transaction():
            member = await locked_member(guild_id, user_id)
            if member.last_xp_at is not None and member.last_xp_at + cooldown > now:
                return None
            progress = Progress.of(member.xp + gained)
            named = {"display_name": display_name[:100]} if display_name else {}
            await Member.filter(id=member.id).update(
                xp=progress.xp, level=progress.level, last_xp_at=now, **named
            )
        return XpAward(gained, progress, member.level)
