"""The composition root: the domain services of one process, built once from one Coordination.

The bot, the command line and the tests all build a `Services` and reach every feature through
it (`bot.services.bank`, `services.moderation`, ...). Nothing in the domain keeps module-level
state, so two `Services` (two tests, two bots in one test) never share a cache by accident.
"""

from __future__ import annotations

from app.config import Settings
from app.coord import Coordination
from app.db.connect import Database, PoolStats
from app.domain.economy import Bank
from app.domain.guilds import GuildConfigs
from app.domain.leaderboard import Leaderboard
from app.domain.levels import Levels
from app.domain.moderation import Moderation
from app.domain.outbox import Outbox
from app.ops import metrics


class Services:
    """Bank, leaderboard, levels, moderation and its outbox, guild settings: one coordination."""

    def __init__(
        self,
        coord: Coordination,
        *,
        transfer_max: int = 1_000_000_000,
        grant_max: int = 1_000_000_000,
        database: Database | None = None,
        bank_functions: bool = True,
    ) -> None:
        self.coord = coord
        #: The database this object opened and will close (None when the caller owns it).
        self.database = database
        self.guilds = GuildConfigs()
        #: False: the bank runs its model code on PostgreSQL too (its functions are the default).
        self.bank = Bank(coord, self.guilds, transfer_max, grant_max, bank_functions)
        self.leaderboard = Leaderboard(coord.leaderboard)
        self.levels = Levels(self.guilds, coord.cooldowns)
        self.moderation = Moderation()
        self.outbox = Outbox()

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        """Open the database (in the calling task's context) and the coordination parts."""
        database = await Database.open_configured(settings)
        coord = Coordination.from_settings(settings, on_lock_wait=metrics.REDIS_LOCK_WAIT.observe)
        return cls(
            coord,
            transfer_max=settings.transfer_max,
            grant_max=settings.grant_max,
            database=database,
        )

    async def database_problem(self) -> str | None:
        """Why the database cannot serve, or None when it can.

        No answer raises; a schema behind the head migration is a reason.
        """
        if self.database is None:
            return "no database of its own"
        return await self.database.problem()

    def pool_stats(self) -> PoolStats | None:
        """The PostgreSQL pool's figures, if this object owns a PostgreSQL database."""
        return self.database.pool_stats() if self.database is not None else None

    async def close(self) -> None:
        """Stop background work, close the coordination parts, then the database if owned."""
        await self.leaderboard.close()
        await self.coord.close()
        if self.database is not None:
            await self.database.close()
