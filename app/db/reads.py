"""Hot-path reads sent as one plain statement, without building a Tortoise query.

Building a query (filters resolved, SQL rendered) and a model per row cost more CPU than the
round trip on the busiest reads (a quarter of a `/balance` answer's samples, in the `commands`
benchmark's profile). Each read here is one statement per dialect, through Tortoise's
connection, so it runs in the caller's transaction and context like any other query.
"""

from __future__ import annotations

from tortoise import connections

_COINS = {
    "postgres": "SELECT coins FROM members WHERE guild_id = $1 AND user_id = $2",
    "sqlite": "SELECT coins FROM members WHERE guild_id = ? AND user_id = ?",
}


async def member_coins(guild_id: int, user_id: int) -> int | None:
    """The member's coins in the guild; None when the member has no profile there."""
    connection = connections.get("default")
    _, rows = await connection.execute_query(
        _COINS[connection.capabilities.dialect], [guild_id, user_id]
    )
    return int(rows[0]["coins"]) if rows else None
