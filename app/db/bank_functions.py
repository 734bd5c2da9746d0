"""Calls of the bank's PostgreSQL functions: a coin movement in one round trip.

`bank_transfer_v1` and `bank_move_v1` (created by migration 5, whose text they keep: a changed
rule is a `_v2` in a new migration) do in one self-committing statement what the model code of
`app.domain.economy` does in a transaction of seven round trips. The domain reads their
outcome: "done", "replayed" (with what the key was first used for), "refused" (a transfer's
remembered refusal), "insufficient", "limit", "not_ready". The request's deadline reaches the
database as the statement's `lock_timeout`; past it the statement writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from tortoise import connections

from app.db.retry import one_statement
from app.domain.types import LedgerKind
from app.ops.deadline import DeadlineExceeded

_TRANSFER = "SELECT * FROM bank_transfer_v1($1, $2, $3, $4, $5, $6, $7)"
_MOVE = "SELECT * FROM bank_move_v1($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """What `bank_transfer_v1` answered (None where the outcome leaves a column empty)."""

    outcome: str
    sender_balance: int | None
    recipient_balance: int | None
    sender_version: int | None
    recipient_version: int | None
    needed: int | None
    seen_guild: int | None
    seen_sender: int | None
    seen_recipient: int | None
    seen_amount: int | None


@dataclass(frozen=True, slots=True)
class MoveOutcome:
    """What `bank_move_v1` answered (None where the outcome leaves a column empty)."""

    outcome: str
    balance: int | None
    version: int | None
    available_at: datetime | None
    seen_guild: int | None
    seen_user: int | None
    seen_kind: str | None
    seen_amount: int | None


@dataclass(frozen=True, slots=True)
class Movement:
    """One movement on one account; daily when `daily_at` is given."""

    guild_id: int
    user_id: int
    kind: LedgerKind
    amount: int
    key: str
    credit: bool
    actor_id: int | None = None
    reason: str | None = None
    daily_at: datetime | None = None


def available() -> bool:
    """True when the open database has the functions (PostgreSQL; SQLite has none)."""
    return bool(connections.get("default").capabilities.dialect == "postgres")


async def transfer(
    guild_id: int, sender_id: int, recipient_id: int, amount: int, key: str, max_balance: int
) -> TransferOutcome:
    """One transfer, committed by the database before it answers."""
    row = await _call(_TRANSFER, guild_id, sender_id, recipient_id, amount, key, max_balance)
    return TransferOutcome(**row)


async def move(m: Movement, cooldown: timedelta, max_balance: int) -> MoveOutcome:
    """One movement on one account, committed (a daily one refused within `cooldown`)."""
    row = await _call(
        _MOVE,
        *(m.guild_id, m.user_id, m.kind, m.amount, m.key, m.actor_id, m.reason, m.credit),
        *(m.daily_at, cooldown, max_balance),
    )
    return MoveOutcome(**row)


async def _call(sql: str, *args: object) -> dict[str, Any]:
    lock_timeout_ms = one_statement()
    try:
        _, rows = await connections.get("default").execute_query(sql, [*args, lock_timeout_ms])
    except asyncpg.exceptions.LockNotAvailableError as error:
        raise DeadlineExceeded("the deadline passed while waiting for a row lock") from error
    return dict(rows[0])
