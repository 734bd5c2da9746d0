"""The ledger invariant: replaying an account's movements gives its balance."""

from __future__ import annotations

from collections import defaultdict
from typing import cast

from app.db.models import LedgerEntry, Member
from app.domain.types import CREDIT_KINDS


async def assert_ledger_replays(guild_id: int) -> None:
    """Every balance equals the signed sum of its ledger rows, and the last balance_after."""
    replay: dict[int, int] = defaultdict(int)
    last: dict[int, int] = {}
    rows = (
        await LedgerEntry.filter(guild_id=guild_id)
        .order_by("id")
        .values_list("user_id", "kind", "amount", "balance_after")
    )
    for user_id, kind, amount, balance_after in rows:
        replay[user_id] += amount if kind in CREDIT_KINDS else -amount
        last[user_id] = balance_after
    balances = dict(await Member.filter(guild_id=guild_id).values_list("user_id", "coins"))
    for user_id, coins in balances.items():
        assert replay.get(user_id, 0) == coins, f"ledger of {user_id} replays to {replay[user_id]}"
        if user_id in last:
            assert last[user_id] == coins, f"last balance_after of {user_id} is {last[user_id]}"


async def total_coins(guild_id: int) -> int:
    """The sum of every balance in the guild."""
    coins = await Member.filter(guild_id=guild_id).values_list("coins", flat=True)
    return sum(cast("list[int]", coins))  # Tortoise types a flat values_list as tuples
