"""A guild's cases as CSV and JSON attachments."""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import discord

from app.db.models import Case
from app.domain import moderation

COLUMNS = (
    "number",
    "action",
    "state",
    "target_id",
    "moderator_id",
    "reason",
    "created_at",
    "expires_at",
    "dm_delivered",
)
#: Above this a file is sent gzip-compressed (Discord's smallest upload limit is 10 MiB).
COMPRESS_ABOVE = 8 * 1024 * 1024
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def case_row(case: Case) -> dict[str, Any]:
    """One case as plain values (ids as strings: JSON readers lose 64-bit integers)."""
    return {
        "number": case.number,
        "action": str(case.action),
        "state": str(case.state),
        "target_id": str(case.target_id),
        "moderator_id": str(case.moderator_id),
        "reason": case.reason,
        "created_at": case.created_at.isoformat() if case.created_at else None,
        "expires_at": case.expires_at.isoformat() if case.expires_at else None,
        "dm_delivered": case.dm_delivered,
    }


def _cell(value: Any) -> Any:
    """Keep spreadsheets from running a reason as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows as UTF-8 CSV with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue().encode()


def to_json(rows: list[dict[str, Any]]) -> bytes:
    """Rows as a UTF-8 JSON array."""
    return json.dumps(rows, ensure_ascii=False, indent=1).encode()


def _file(data: bytes, name: str) -> discord.File:
    if len(data) > COMPRESS_ABOVE:
        return discord.File(io.BytesIO(gzip.compress(data)), filename=f"{name}.gz")
    return discord.File(io.BytesIO(data), filename=name)


async def export_files(guild_id: int, target_id: int | None) -> tuple[int, list[discord.File]]:
    """(number of cases, [CSV file, JSON file]) for a guild or one member of it."""
    rows = [case_row(c) async for c in moderation.export(guild_id, target_id)]
    stem = f"cases-{guild_id}" + (f"-{target_id}" if target_id else "")
    return len(rows), [_file(to_csv(rows), f"{stem}.csv"), _file(to_json(rows), f"{stem}.json")]
