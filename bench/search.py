"""search: case search by text (ours: trigram GIN index) against an unindexed ILIKE scan.

The data is the `history` benchmark's case log (bench/history.py: one heavy guild, many small
ones; reasons "benchmark case N"), loaded the same way with migration 4's trigram index on
(guild_id, reason) in place. Each query is `search_cases` (app/domain/case_search.py), first
page of 25 newest first, as the web console asks it; the baseline is the very same query with
the reason hidden from the index (`reason || '' ILIKE ...`, `indexed=False`), so PostgreSQL
must read every case of the guild and test the pattern. Both must return the same cases.

A rare text (a case number: a few cases of the guild) is where the index matters; a common
one ("case": every case) ends after the 25 newest either way. The second table times the web
console's case-list page: rendering its template for 25 cases, and search + render.
"""

from __future__ import annotations

import time
from typing import Any

from app.domain.case_search import CaseQuery, search_cases
from app.web.server import templates
from bench.harness import Benchmark, Result, RunContext, progress
from bench.history import GUILD_BASE, SHAPES, loaded_log
from bench.tables import Table, ratio
from bench.timing import Run, interleaved

PER_PAGE = 25


async def compare(query: CaseQuery, count: int) -> tuple[Run, Run, bool, int]:
    """Time the first page with and without the index; (ours, baseline, same rows, matches)."""
    seen: dict[str, list[list[int]]] = {"ours": [], "ilike": []}

    async def ours(i: int) -> None:
        page = await search_cases(query, limit=PER_PAGE)
        seen["ours"].append([c.number for c in page.cases])

    async def unindexed(i: int) -> None:
        page = await search_cases(query, limit=PER_PAGE, indexed=False)
        seen["ilike"].append([c.number for c in page.cases])

    runs = await interleaved({"ours": ours, "ilike": unindexed}, count)
    return runs["ours"], runs["ilike"], seen["ours"] == seen["ilike"], len(seen["ours"][0])


def page_context(cases: list[Any]) -> dict[str, Any]:
    """What the case-list page's template is given (app/web/pages.py)."""

    class Guild:
        guild_id, name = GUILD_BASE, "Benchmark guild"

    class Session:
        name, csrf = "moderator", "x" * 32

    class Reader:
        guild, session = Guild, Session

    return {
        "reader": Reader,
        "session": Session,
        "form": {"q": "case"},
        "error": None,
        "next_before": cases[-1].number if cases else None,
        "cases": cases,
        "names": {},
        "following": {"q": "case"},
        "actions": ["warn", "note"],
        "states": ["active"],
    }


async def run(ctx: RunContext) -> Result:
    """Load the history case log, then time each search both ways and the page render."""
    shape = SHAPES[ctx.scale]
    result = ctx.result(
        f"{shape.cases:,} cases over {shape.guilds:,} guilds (the `history` data: one heavy "
        f"guild of {shape.heavy_cases:,}, the others {shape.per_guild:,} each); first page of "
        f"{PER_PAGE}, each query {shape.queries} times, in turn with the unindexed baseline "
        "after 5 unmeasured runs, one caller."
    )
    async with loaded_log(ctx.server_url, shape) as (_, timings, info):
        small = GUILD_BASE + 1
        # Case numbers as text: a whole number matches that case (and the few whose number
        # contains it); its first digits match a tenth or a hundredth of the guild.
        large_rare, small_rare = str(shape.heavy_cases * 3 // 4), str(shape.per_guild * 3 // 4)
        queries = [
            (f"large guild, rare text “{large_rare}”", CaseQuery(GUILD_BASE, text=large_rare)),
            (
                f"large guild, partial “{large_rare[:3]}”",
                CaseQuery(GUILD_BASE, text=large_rare[:3]),
            ),
            ("large guild, common text “case”", CaseQuery(GUILD_BASE, text="case")),
            (f"small guild, rare text “{small_rare}”", CaseQuery(small, text=small_rare)),
            ("small guild, common text “case”", CaseQuery(small, text="case")),
        ]
        table = Table(
            "Case search, first page (one caller; indexed and ILIKE take turns)",
            [
                "query",
                "cases on the page",
                "ours p50 ms",
                "ours p99 ms",
                "ILIKE scan p50 ms",
                "ILIKE scan p99 ms",
                "ILIKE / ours (p50)",
            ],
        )
        agree: dict[str, bool] = {}
        for name, query in queries:
            progress(name)
            ours, baseline, agree[name], found = await compare(query, shape.queries)
            table.add(
                name,
                found,
                ours.p50_ms,
                ours.p99_ms,
                baseline.p50_ms,
                baseline.p99_ms,
                ratio(baseline.p50_ms, ours.p50_ms),
            )
        progress("the case-list page")
        page = await search_cases(CaseQuery(GUILD_BASE, text="case"), limit=PER_PAGE)
        template = templates().get_template("cases.html")

        async def render(i: int) -> None:
            template.render(**page_context(page.cases))

        partial = CaseQuery(GUILD_BASE, text=large_rare[:3])

        async def search_and_render(i: int) -> None:
            found = await search_cases(partial, limit=PER_PAGE)
            template.render(**page_context(found.cases))

        async def scan_and_render(i: int) -> None:
            found = await search_cases(partial, limit=PER_PAGE, indexed=False)
            template.render(**page_context(found.cases))

        started = time.perf_counter()
        runs = await interleaved(
            {
                "render": render,
                "search + render": search_and_render,
                "ILIKE scan + render": scan_and_render,
            },
            shape.queries,
        )
        html = len(template.render(**page_context(page.cases)))
        pages = Table(
            f"The web console's case list ({PER_PAGE} cases, {html:,} bytes of HTML)",
            ["work (search: the large guild's partial text)", "p50 ms", "p99 ms"],
        )
        for name, measured in runs.items():
            pages.add(name, measured.p50_ms, measured.p99_ms)
        progress(f"page timings took {time.perf_counter() - started:.1f} s")
    setup = Table("Setup", ["step", "seconds", "note"])
    setup.add("generate the cases", timings["insert"], "the history benchmark's load")
    setup.add("VACUUM ANALYZE", timings["vacuum"], None)
    result.tables += [table, pages, setup]
    result.notes += [
        f"cases: {info['cases']:,} rows, heap {info['heap'] / 2**20:,.0f} MiB, indexes "
        f"{info['indexes'] / 2**20:,.0f} MiB (the trigram GIN index among them).",
        "Ours is `search_cases` through Tortoise: one SQL query for the ids (keyset order, "
        "LIMIT 26), then the rows. The baseline is the same code with the reason hidden from "
        "the index, so PostgreSQL filters the guild's cases one by one.",
        "Render is Jinja2 with autoescape, in this process, without HTTP.",
    ]
    result.facts.update({"cases": info["cases"], "same_rows": agree})
    return result


BENCHMARK = Benchmark(
    "search",
    "case search: trigram index (ours) against an unindexed ILIKE scan",
    run,
)
