"""Case search: text in reasons, filters, keyset pages; the same answers on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from app.domain.case_search import CaseQuery, all_matches, parse_action, search_cases
from app.domain.errors import InvalidInput
from app.domain.types import CaseAction, CaseState, CaseView
from tests.conftest import Backend

G, OTHER = 555555555555555555, 555555555555555556
MOD_A, MOD_B = 7, 8
T0 = datetime(2026, 3, 1, tzinfo=UTC)
REASONS = [
    "Spamming links in #general",
    "spam again",
    "100% off scam link",
    "raid_bot account",
    "Harassment of a member",
    "posted ANTI-SPAM bypass",
]


async def _seed(backend: Backend) -> None:
    for i, reason in enumerate(REASONS * 2):
        action = ("warn", "note", "kick")[i % 3]
        await backend.moderation.open_case(
            G, action, 100 + i % 2, (MOD_A, MOD_B)[i % 2], reason, now=T0 + timedelta(days=i)
        )
    await backend.moderation.open_case(OTHER, "warn", 100, MOD_A, "spam in the other guild")


def numbers(cases: list[CaseView]) -> list[int]:
    return [c.number for c in cases]


async def test_words_match_anywhere_in_any_case(backend: Backend) -> None:
    await _seed(backend)
    page = await search_cases(CaseQuery(G, text="SPAM"), limit=50)
    assert numbers(page.cases) == [12, 8, 7, 6, 2, 1]  # never the other guild's case
    both = await search_cases(CaseQuery(G, text="spam  links"), limit=50)
    assert numbers(both.cases) == [7, 1]  # every word must occur
    partial = await search_cases(CaseQuery(G, text="arass"), limit=50)
    assert numbers(partial.cases) == [11, 5]


async def test_like_wildcards_are_literal(backend: Backend) -> None:
    await _seed(backend)
    assert numbers((await search_cases(CaseQuery(G, text="100%"), limit=50)).cases) == [9, 3]
    assert numbers((await search_cases(CaseQuery(G, text="d_b"), limit=50)).cases) == [10, 4]
    assert (await search_cases(CaseQuery(G, text="%"), limit=50)).cases != []
    assert (await search_cases(CaseQuery(G, text="_x_"), limit=50)).cases == []


async def test_filters_combine_with_text(backend: Backend) -> None:
    await _seed(backend)
    await backend.moderation.pardon(G, 7, MOD_B, "mistake")
    query = CaseQuery(G, text="spam", moderator_id=MOD_A)
    assert numbers((await search_cases(query, limit=50)).cases) == [7, 1]
    query = CaseQuery(G, text="spam", target_id=101)
    assert numbers((await search_cases(query, limit=50)).cases) == [12, 8, 6, 2]
    query = CaseQuery(G, action=CaseAction.KICK)
    assert numbers((await search_cases(query, limit=50)).cases) == [12, 9, 6, 3]
    query = CaseQuery(G, state=CaseState.PARDONED)
    assert numbers((await search_cases(query, limit=50)).cases) == [7]
    query = CaseQuery(G, since=T0 + timedelta(days=3), until=T0 + timedelta(days=6))
    assert numbers((await search_cases(query, limit=50)).cases) == [6, 5, 4]
    query = CaseQuery(G, text="spam", leave_out=100)
    assert numbers((await search_cases(query, limit=50)).cases) == [12, 8, 6, 2]


async def test_keyset_pages_walk_every_match_once(backend: Backend) -> None:
    await _seed(backend)
    seen: list[int] = []
    before = None
    while True:
        page = await search_cases(CaseQuery(G, text="a"), before=before, limit=3)
        seen += numbers(page.cases)
        if page.next_before is None:
            break
        before = page.next_before
    everything = await search_cases(CaseQuery(G, text="a"), limit=50)
    assert seen == numbers(everything.cases) and len(seen) == 12
    assert [c.number async for c in all_matches(CaseQuery(G, text="a"), chunk=5)] == seen


async def test_unindexed_baseline_gives_the_same_answer(backend: Backend) -> None:
    await _seed(backend)
    query = CaseQuery(G, text="spam link", target_id=100)
    indexed = await search_cases(query, limit=50)
    plain = await search_cases(query, limit=50, indexed=False)
    assert numbers(indexed.cases) == numbers(plain.cases) == [7, 1]


async def test_bad_queries_are_refused(backend: Backend) -> None:
    with pytest.raises(InvalidInput):
        await search_cases(CaseQuery(G, text=" ".join("w" * 9)))
    with pytest.raises(InvalidInput):
        await search_cases(CaseQuery(G, text="x" * 201))
    with pytest.raises(InvalidInput):
        parse_action("bans please")
    with pytest.raises(InvalidInput):
        await search_cases(CaseQuery(G), limit=0)


async def test_postgres_uses_the_trigram_index(pg: Backend) -> None:
    await _seed(pg)
    async with in_transaction() as conn:  # one connection: SET LOCAL holds for the EXPLAIN
        await conn.execute_script("SET LOCAL enable_seqscan = off")
        await conn.execute_script("SET LOCAL enable_indexscan = off")
        rows = await conn.execute_query_dict(
            "EXPLAIN SELECT id FROM cases WHERE reason ILIKE '%arass%'"
        )
    assert "cases_reason_trgm_idx" in " ".join(r["QUERY PLAN"] for r in rows)
