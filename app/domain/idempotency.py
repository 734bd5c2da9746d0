"""One idempotency contract for every state-changing operation.

A request (a slash command's interaction, a prefix command's message, an audit-log entry) is
applied once per key: a repeat returns the first result marked `replayed`, and a key that comes
back for a different operation, member or amount is refused as a conflict rather than guessed at.
Keys are built here and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.domain.errors import IdempotencyConflict

#: The operations that take a key, and the prefix of their keys.
KINDS = frozenset(
    {"tx", "daily", "give", "fine", "case", "pardon", "reason", "audit", "config", "bench"}
)
MAX_KEY = 120


def request_key(kind: str, request_id: int | str) -> str:
    """The key of one request: "tx:1234" for the transfer carried by interaction 1234."""
    if kind not in KINDS:
        raise ValueError(f"unknown idempotency kind {kind!r}")
    key = f"{kind}:{request_id}"
    if len(key) > MAX_KEY - 4:  # room for the ":out" / ":in" suffixes of a transfer's rows
        raise ValueError("idempotency key too long")
    return key


def fresh_key(kind: str) -> str:
    """A key for an operation no request identifies (scripts, benchmarks, tests)."""
    return request_key(kind, uuid.uuid4().hex)


def check_same(stored: Sequence[object], requested: Sequence[object], what: str) -> None:
    """Refuse a replayed key whose first use was a different `what` (target, amount, ...)."""
    if tuple(stored) != tuple(requested):
        raise IdempotencyConflict(f"That request id was already used for another {what}.")
