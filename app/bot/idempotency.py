"""Idempotency keys from the request that carried a command (app/domain/idempotency.py).

A slash command is keyed by its interaction id, a prefix command by its message id: the same
request delivered twice (a gateway RESUME replay, two sessions on one shard) maps to one key, so
the domain applies it once and returns the first result.
"""

from __future__ import annotations

from typing import Any

from discord.ext import commands

from app.domain import idempotency


def request_id(ctx: commands.Context[Any]) -> int:
    """The interaction id of a slash command, the message id of a prefix command."""
    return ctx.interaction.id if ctx.interaction is not None else ctx.message.id


def request_key(ctx: commands.Context[Any], kind: str) -> str:
    """The key of this command's request for one kind of operation, e.g. "tx:1234"."""
    return idempotency.request_key(kind, request_id(ctx))
