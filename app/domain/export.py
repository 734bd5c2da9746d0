"""Cases as CSV and JSON rows: the modlog export of the bot and of the web console.

Ids are text (JSON readers lose 64-bit integers); a CSV cell that a spreadsheet would run as a
formula (starting with =, +, -, @, a tab or a carriage return) gets a leading `'`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from app.domain.types import CaseView

COLUMNS = (
    "number",
    "action",
    "state",
    "target_id",
    "target_name",
    "moderator_id",
    "moderator_name",
    "reason",
    "created_at",
    "expires_at",
    "dm_delivered",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
DM_DELIVERED = {True: "yes", False: "no", None: "not sent"}


def case_row(case: CaseView, names: Mapping[int, str]) -> dict[str, Any]:
    """One case as plain values (ids as strings: JSON readers lose 64-bit integers)."""
    return {
        "number": case.number,
        "action": str(case.action),
        "state": str(case.state),
        "target_id": str(case.target_id),
        "target_name": names.get(case.target_id, ""),
        "moderator_id": str(case.moderator_id),
        "moderator_name": names.get(case.moderator_id, ""),
        "reason": case.reason,
        "created_at": case.created_at.isoformat() if case.created_at else None,
        "expires_at": case.expires_at.isoformat() if case.expires_at else None,
        "dm_delivered": DM_DELIVERED[case.dm_delivered],
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
