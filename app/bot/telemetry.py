"""Metrics the bot records about commands, coins and cases (names in app/ops/metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from discord.ext import commands

from app.domain.economy import Receipt, TransferReceipt
from app.ops import metrics


def command_finished(ctx: commands.Context[Any], outcome: str) -> None:
    """Count a command by outcome (ok, refused, error) and time it from its creation."""
    name = ctx.command.qualified_name if ctx.command else "unknown"
    metrics.COMMANDS.labels(name, outcome).inc()
    started = ctx.interaction.created_at if ctx.interaction else ctx.message.created_at
    elapsed = (datetime.now(UTC) - started).total_seconds()
    metrics.COMMAND_DURATION.labels(name).observe(max(0.0, elapsed))


def command_expired(command: str, form: str) -> None:
    """Count a command not executed because its deadline passed (slash or prefix)."""
    metrics.COMMANDS_EXPIRED.labels(command, form).inc()


def coins_moved(kind: str, receipt: Receipt | TransferReceipt) -> None:
    """Count coins moved by a first (not replayed) movement."""
    if not receipt.replayed:
        metrics.COINS_MOVED.labels(kind).inc(receipt.amount)


def case_opened(action: str) -> None:
    """Count a newly opened case."""
    metrics.CASES_OPENED.labels(action).inc()
