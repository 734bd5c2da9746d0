"""Tables of results: aligned text for the terminal, Markdown for the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Cell = str | int | float | None


def fmt(value: Cell, digits: int = 2) -> str:
    """A table cell: thousands separators for integers, `digits` decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.{digits}f}"
    return value


def ratio(numerator: float, denominator: float) -> str:
    """`numerator / denominator` as "12x" (one decimal below 10)."""
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return "-"
    value = numerator / denominator
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


@dataclass
class Table:
    """A titled table; numbers are right-aligned, text left-aligned."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        """Append a row."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def _numeric(self, index: int) -> bool:
        values = [row[index] for row in self.rows if row[index] is not None]
        return bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )

    def text(self) -> str:
        """Plain aligned text for the terminal."""
        cells = [self.columns, *[[fmt(c) for c in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        numeric = [self._numeric(i) for i in range(len(self.columns))]

        def line(row: list[str]) -> str:
            return "  ".join(
                v.rjust(w) if n else v.ljust(w)
                for v, w, n in zip(row, widths, numeric, strict=True)
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([self.title, line(cells[0]), rule, *(line(r) for r in cells[1:])])

    def markdown(self) -> str:
        """A GitHub-flavoured Markdown table under a bold title."""
        numeric = [self._numeric(i) for i in range(len(self.columns))]
        head = "| " + " | ".join(self.columns) + " |"
        align = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
        body = ["| " + " | ".join(fmt(c) for c in row) + " |" for row in self.rows]
        return "\n".join([f"**{self.title}**", "", head, align, *body])

    def as_dict(self) -> dict[str, Any]:
        """Raw cells, for JSON."""
        return {"title": self.title, "columns": self.columns, "rows": self.rows}
