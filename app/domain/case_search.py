"""Case search: words in the reasons (and notes), filters, keyset pages newest first.

Every word of the text must occur in the case's reason, anywhere and in any case ("spam"
finds "Spamming links"). On PostgreSQL that is `ILIKE` over a trigram GIN index on
(guild_id, reason) (migration 4, pg_trgm + btree_gin), so partial words are found without
reading the guild's whole log; on the embedded SQLite it is `LIKE`, which ignores ASCII case
the same way. The filters (member, moderator, action, state, a date range, the reader's own
cases left out) are plain columns; pages are walked with the case number as the cursor.

The rows are chosen by one SQL query returning ids, then read as ORM rows, so both dialects
share the row conversion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from tortoise import connections
from tortoise.transactions import in_transaction

from app.db.models import Case
from app.domain import validation
from app.domain.errors import InvalidInput
from app.domain.moderation import PAGE_MAX, CasePage, case_view
from app.domain.types import CaseAction, CaseState, CaseView

E = TypeVar("E", bound=StrEnum)
MAX_WORDS = 8
MAX_TEXT = 200
EXPORT_CHUNK = 500


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """What to look for in one guild's cases. Empty fields do not filter."""

    guild_id: int
    text: str = ""
    target_id: int | None = None
    moderator_id: int | None = None
    action: CaseAction | None = None
    state: CaseState | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: The reader: cases about them are never returned (nobody reads their own cases).
    leave_out: int | None = None

    def words(self) -> list[str]:
        """The text's words (each must occur in the reason), checked for size."""
        if len(self.text) > MAX_TEXT:
            raise InvalidInput(f"The search text may be at most {MAX_TEXT} characters.")
        words = self.text.split()
        if len(words) > MAX_WORDS:
            raise InvalidInput(f"Search for at most {MAX_WORDS} words at a time.")
        if "\x00" in self.text:
            raise InvalidInput("The search text contains a character that cannot be stored.")
        return words


def parse_action(value: str | None) -> CaseAction | None:
    """A kind of case from its name (empty: any); an unknown name is refused, never ignored."""
    return _named(CaseAction, value, "a kind of case")


def parse_state(value: str | None) -> CaseState | None:
    """A case state from its name (empty: any); an unknown name is refused."""
    return _named(CaseState, value, "a case state")


def parse_day(value: str | None, what: str, days: int = 0) -> datetime | None:
    """The start (UTC) of the day written YYYY-MM-DD, `days` later (empty: no bound).

    Anything else is refused with the format, never read as no bound.
    """
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"The {what} date {value[:20]!r} is not a date: write it as YYYY-MM-DD."
        ) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=days)


def _named(kind: type[E], value: str | None, what: str) -> E | None:
    if not value:
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        names = ", ".join(k.value for k in kind)
        raise InvalidInput(f"{value[:20]!r} is not {what}: use one of {names}.") from None


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class _Sql:
    """A WHERE clause and its parameters, with the dialect's placeholders."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.clauses: list[str] = []
        self.values: list[Any] = []
        self.words = 0

    def add(self, clause: Callable[[str], str], value: Any) -> None:
        self.values.append(value)
        mark = f"${len(self.values)}" if self.postgres else "?"
        self.clauses.append(clause(mark))


def _where(query: CaseQuery, before: int | None, postgres: bool, indexed: bool) -> _Sql:
    sql = _Sql(postgres)
    sql.add(lambda p: f"guild_id = {p}", validation.snowflake(query.guild_id, "guild"))
    if query.target_id is not None:
        sql.add(lambda p: f"target_id = {p}", validation.snowflake(query.target_id, "member"))
    if query.moderator_id is not None:
        sql.add(
            lambda p: f"moderator_id = {p}",
            validation.snowflake(query.moderator_id, "moderator"),
        )
    if query.leave_out is not None:
        sql.add(lambda p: f"target_id <> {p}", query.leave_out)
    if query.action is not None:
        sql.add(lambda p: f"action = {p}", query.action.value)
    if query.state is not None:
        sql.add(lambda p: f"state = {p}", query.state.value)
    if query.since is not None:
        sql.add(lambda p: f"created_at >= {p}", query.since)
    if query.until is not None:
        sql.add(lambda p: f"created_at < {p}", query.until)
    if before is not None:
        sql.add(lambda p: f"number < {p}", validation.case_number(before))
    # `reason || ''` hides the column from the trigram index: the unindexed baseline (bench/).
    column = "reason" if indexed else "(reason || '')"
    operator = "ILIKE" if postgres else "LIKE"
    for word in query.words():
        sql.words += 1
        sql.add(lambda p: f"{column} {operator} {p} ESCAPE '\\'", _like_pattern(word))
    return sql


async def search_cases(
    query: CaseQuery, *, before: int | None = None, limit: int = 10, indexed: bool = True
) -> CasePage:
    """One page of matching cases, newest first; `before` is the cursor of the previous page.

    `indexed=False` runs the same search without the text index (the benchmark's baseline).
    """
    if not 1 <= limit <= PAGE_MAX * 20:
        raise InvalidInput(f"A page holds 1 to {PAGE_MAX * 20} cases.")
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    sql = _where(query, before, postgres, indexed)
    statement = (
        f"SELECT id FROM cases WHERE {' AND '.join(sql.clauses)}"
        f" ORDER BY number DESC LIMIT {limit + 1}"
    )
    if postgres and sql.words:
        # How many cases a word matches decides the plan (the guild's newest cases in order
        # for a common word, the trigram index for a rare one): plan each search for its own
        # words, never with the generic plan a prepared statement falls back to.
        async with in_transaction() as tx:
            await tx.execute_script("SET LOCAL plan_cache_mode = force_custom_plan")
            _, rows = await tx.execute_query(statement, sql.values)
    else:
        _, rows = await conn.execute_query(statement, sql.values)
    ids = [row["id"] for row in rows]
    more = len(ids) > limit
    found = await Case.filter(id__in=ids[:limit]).order_by("-number")
    cases = [case_view(row) for row in found]
    return CasePage(cases, cases[-1].number if more and cases else None)


async def all_matches(query: CaseQuery, chunk: int = EXPORT_CHUNK) -> AsyncIterator[CaseView]:
    """Every matching case, newest first, read page by page (for an export)."""
    before: int | None = None
    while True:
        page = await search_cases(query, before=before, limit=chunk)
        for case in page.cases:
            yield case
        if page.next_before is None:
            return
        before = page.next_before
