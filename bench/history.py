"""history: moderation case history, keyset pagination (ours) against OFFSET pagination.

The case log is generated inside PostgreSQL (INSERT ... SELECT generate_series, in batches
that interleave the guilds' cases as time would, so that one member's cases lie scattered over
the table), then VACUUM ANALYZEd. One "heavy" guild holds a
member with thousands of cases and a moderator who handled half the guild's cases, so that
deep pages are deep. Every other guild holds the same number of cases spread over 200 members
and 10 moderators.

Ours is `Moderation.history` (app/domain/moderation.py: WHERE ... AND number < cursor ORDER BY
number DESC LIMIT 11, through Tortoise); the baseline is the same Tortoise query with ORDER BY
number DESC OFFSET k LIMIT 10, for the same pages. Both must return the same rows.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Required, TypedDict

from app.db.models import Case
from app.domain.moderation import Moderation
from bench.data import (
    BenchDatabase,
    connect,
    fetch_value,
    fresh_database,
    open_tortoise,
    tortoise_context,
    vacuum_analyze,
)
from bench.harness import Benchmark, Result, RunContext, Scale, progress
from bench.tables import Table, ratio
from bench.timing import Run, interleaved, stopwatch

PER_PAGE = 10
GUILD_BASE = 500_000_000_000_000_000
TARGET_BASE = 600_000_000_000_000_000
MODERATOR_BASE = 700_000_000_000_000_000
TARGETS_PER_GUILD = 200
MODERATORS_PER_GUILD = 10
HEAVY_MEMBER = TARGET_BASE + 10_000
HEAVY_MODERATOR = MODERATOR_BASE + 100
ACTIONS = "ARRAY['warn','note','timeout','kick','ban','tempban','unban','untimeout','fine']"


class CaseFilter(TypedDict, total=False):
    """What a page of cases is filtered on: the guild, and a member or a moderator."""

    guild_id: Required[int]
    target_id: int
    moderator_id: int


@dataclass(frozen=True, slots=True)
class Shape:
    """The size of the case log at one scale."""

    cases: int
    guilds: int
    heavy_guild_cases: int  # about; the heavy guild takes the remainder of the division
    member_every: int  # every n-th case of the heavy guild targets the heavy member
    queries: int
    batches: int

    @property
    def per_guild(self) -> int:
        """Cases in each ordinary guild."""
        return (self.cases - self.heavy_guild_cases) // (self.guilds - 1)

    @property
    def heavy_cases(self) -> int:
        """Cases in the heavy guild: the rest of the total."""
        return self.cases - self.per_guild * (self.guilds - 1)


SHAPES: dict[Scale, Shape] = {
    "tiny": Shape(20_000, 20, 2_000, 4, 20, 2),
    "small": Shape(1_000_000, 1_000, 50_000, 10, 200, 10),
    "full": Shape(10_000_000, 10_000, 50_000, 10, 200, 40),
}

# One batch: rounds lo..hi of every ordinary guild (round n holds case n of each guild) and the
# heavy guild's cases hlo..hhi, spread evenly among them and inserted in that order, so that a
# guild's cases lie scattered over the table as they would after years of mixed traffic.
BATCH = f"""
INSERT INTO cases (guild_id, number, action, target_id, moderator_id, reason, created_at, state)
SELECT guild_id, number, ({ACTIONS})[1 + (number + guild_id % 9) % 9], target_id, moderator_id,
       'benchmark case ' || number, $4::timestamptz + make_interval(secs => seq * 60), 'active'
FROM (
    SELECT $1::bigint + g AS guild_id, n AS number,
           $2::bigint + floor(random() * {TARGETS_PER_GUILD})::bigint AS target_id,
           $3::bigint + floor(random() * {MODERATORS_PER_GUILD})::bigint AS moderator_id,
           n + g::float8 / ($7 + 1) AS seq
    FROM generate_series($5::int, $6::int) AS n, generate_series(1, $7::int) AS g
    UNION ALL
    SELECT $1::bigint, m,
           CASE WHEN m % $10 = 0 THEN $11::bigint
                ELSE $2::bigint + floor(random() * {TARGETS_PER_GUILD})::bigint END,
           CASE WHEN m % 2 = 0 THEN $12::bigint
                ELSE $3::bigint + floor(random() * {MODERATORS_PER_GUILD})::bigint END,
           $5 + (m - $8)::float8 * ($6 - $5 + 1) / ($9 - $8 + 1)
    FROM generate_series($8::int, $9::int) AS m
) AS batch
ORDER BY seq
"""
SETTINGS = """
INSERT INTO guild_settings (guild_id, currency_name, daily_amount, xp_min, xp_max, xp_cooldown_s,
    modlog_channel_id, levelup_channel_id, levelup_dm, no_xp_channel_ids, last_case_number,
    created_at, updated_at)
SELECT guild_id, 'coins', 100, 15, 25, 60, NULL, NULL, false, '[]'::jsonb, max(number), $1, $1
FROM cases GROUP BY guild_id
"""


def _span(total: int, batches: int, b: int) -> tuple[int, int]:
    """Numbers [lo, hi] of batch b (0-based) when 1..total is cut into `batches` parts."""
    return total * b // batches + 1, total * (b + 1) // batches


async def load(dsn: str, shape: Shape) -> dict[str, float]:
    """Generate the case log in PostgreSQL; returns the timings of each step."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    timings: dict[str, float] = {}
    async with connect(dsn) as conn:
        async with stopwatch() as insert_time:
            for b in range(shape.batches):
                lo, hi = _span(shape.per_guild, shape.batches, b)
                hlo, hhi = _span(shape.heavy_cases, shape.batches, b)
                await conn.execute(
                    BATCH,
                    GUILD_BASE,
                    TARGET_BASE,
                    MODERATOR_BASE,
                    start,
                    lo,
                    hi,
                    shape.guilds - 1,
                    hlo,
                    hhi,
                    shape.member_every,
                    HEAVY_MEMBER,
                    HEAVY_MODERATOR,
                )
                progress(f"inserted batch {b + 1}/{shape.batches}")
            await conn.execute(SETTINGS, start)
        timings["insert"] = insert_time[0]
    timings["vacuum"] = await vacuum_analyze(dsn, "cases", "guild_settings")
    return timings


@asynccontextmanager
async def loaded_log(
    server_url: str, shape: Shape
) -> AsyncIterator[tuple[BenchDatabase, dict[str, float], dict[str, Any]]]:
    """A fresh database holding the case log, Tortoise open on it (2 connections): the
    database, the load's timings and `describe`'s figures."""
    async with fresh_database(server_url) as db, tortoise_context():
        progress(f"generating {shape.cases:,} cases in PostgreSQL")
        timings = await load(db.dsn, shape)
        info = await describe(db.dsn)
        await open_tortoise(db.url, 2)
        yield db, timings, info


async def describe(dsn: str) -> dict[str, Any]:
    """Row counts and sizes after the load."""
    async with connect(dsn) as conn:
        row = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM cases) AS cases,
                   (SELECT count(*) FROM cases WHERE guild_id = $1 AND target_id = $2) AS member,
                   (SELECT count(*) FROM cases WHERE guild_id = $1 AND moderator_id = $3)
                       AS moderator,
                   pg_relation_size('cases') AS heap,
                   pg_indexes_size('cases') AS indexes
            """,
            GUILD_BASE,
            HEAVY_MEMBER,
            HEAVY_MODERATOR,
        )
    return dict(row)


async def cursor_before(dsn: str, field: str, who: int, page: int) -> int:
    """The keyset cursor that opens `page`: the last case number of the page before it."""
    return await fetch_value(
        dsn,
        f"SELECT number FROM cases WHERE guild_id = $1 AND {field} = $2"
        " ORDER BY number DESC OFFSET $3 LIMIT 1",
        GUILD_BASE,
        who,
        (page - 1) * PER_PAGE - 1,
    )


async def keyset_page(filters: CaseFilter, before: int | None) -> list[int]:
    """Ours: one page through the domain function, as the bot's /cases command reads it."""
    page = await Moderation().history(limit=PER_PAGE, before=before, **filters)
    return [case.number for case in page.cases]


async def offset_page(filters: CaseFilter, offset: int) -> list[int]:
    """The baseline: the same filter with ORDER BY number DESC OFFSET k LIMIT 10."""
    rows = await Case.filter(**filters).order_by("-number").offset(offset).limit(PER_PAGE)
    return [case.number for case in rows]


async def walk_keyset(filters: CaseFilter) -> list[int]:
    """Every page in turn, following the cursor."""
    numbers: list[int] = []
    before: int | None = None
    while True:
        page = await Moderation().history(limit=PER_PAGE, before=before, **filters)
        numbers += [case.number for case in page.cases]
        if page.next_before is None:
            return numbers
        before = page.next_before


async def walk_offset(filters: CaseFilter) -> list[int]:
    """Every page in turn, OFFSET 0, 10, 20 ... until a page comes back short."""
    numbers: list[int] = []
    offset = 0
    while True:
        page = await offset_page(filters, offset)
        numbers += page
        if len(page) < PER_PAGE:
            return numbers
        offset += PER_PAGE


async def compare(
    filter_sets: list[CaseFilter], before: int | None, offset: int, count: int
) -> tuple[Run, Run, bool]:
    """Time one page both ways over the filter sets in turn; True when both saw the same rows."""
    seen: dict[str, list[list[int]]] = {"keyset": [], "offset": []}

    async def by_keyset(i: int) -> None:
        seen["keyset"].append(await keyset_page(filter_sets[i % len(filter_sets)], before))

    async def by_offset(i: int) -> None:
        seen["offset"].append(await offset_page(filter_sets[i % len(filter_sets)], offset))

    runs = await interleaved({"keyset": by_keyset, "offset": by_offset}, count)
    keyset, offsets = runs["keyset"], runs["offset"]
    same = seen["keyset"] == seen["offset"] and any(seen["keyset"])
    return keyset, offsets, same


async def run(ctx: RunContext) -> Result:
    """Load the case log, then time each page both ways and check they agree."""
    shape = SHAPES[ctx.scale]
    rng = random.Random(20261128)
    result = ctx.result(
        f"{shape.cases:,} cases over {shape.guilds:,} guilds ({shape.per_guild:,} per "
        f"guild over {TARGETS_PER_GUILD} members and {MODERATORS_PER_GUILD} moderators; "
        f"one heavy guild of {shape.heavy_cases:,}); each query {shape.queries} times, in "
        "turn with the other pagination after 5 unmeasured runs, one caller."
    )
    async with loaded_log(ctx.server_url, shape) as (db, timings, info):
        member: CaseFilter = {"guild_id": GUILD_BASE, "target_id": HEAVY_MEMBER}
        moderator: CaseFilter = {"guild_id": GUILD_BASE, "moderator_id": HEAVY_MODERATOR}
        member_page = max(2, int(info["member"] / PER_PAGE * 0.8))
        moderator_page = max(2, int(info["moderator"] / PER_PAGE * 0.8))
        randoms: list[CaseFilter] = [
            {
                "guild_id": GUILD_BASE + rng.randrange(1, shape.guilds),
                "target_id": TARGET_BASE + rng.randrange(TARGETS_PER_GUILD),
            }
            for _ in range(shape.queries)
        ]
        queries: list[tuple[str, list[CaseFilter], int, int | None]] = [
            ("heavy member, page 1", [member], 1, None),
            (
                f"heavy member, page {member_page:,}",
                [member],
                member_page,
                await cursor_before(db.dsn, "target_id", HEAVY_MEMBER, member_page),
            ),
            ("heavy moderator, page 1", [moderator], 1, None),
            (
                f"heavy moderator, page {moderator_page:,}",
                [moderator],
                moderator_page,
                await cursor_before(db.dsn, "moderator_id", HEAVY_MODERATOR, moderator_page),
            ),
            ("random member of a random guild, page 1", randoms, 1, None),
        ]
        table = Table(
            "Case history pages (one caller; keyset and OFFSET take turns)",
            [
                "query",
                "rows skipped by OFFSET",
                "keyset p50 ms",
                "keyset p99 ms",
                "OFFSET p50 ms",
                "OFFSET p99 ms",
                "OFFSET / keyset (p50)",
            ],
        )
        agree: dict[str, bool] = {}
        for name, filter_sets, page, before in queries:
            progress(name)
            offset = (page - 1) * PER_PAGE
            keyset, offsets, agree[name] = await compare(filter_sets, before, offset, shape.queries)
            table.add(
                name,
                offset,
                keyset.p50_ms,
                keyset.p99_ms,
                offsets.p50_ms,
                offsets.p99_ms,
                ratio(offsets.p50_ms, keyset.p50_ms),
            )
        progress("every page of the heavy member, both ways")
        async with stopwatch() as keyset_walk_time:
            walked_keyset = await walk_keyset(member)
        async with stopwatch() as offset_walk_time:
            walked_offset = await walk_offset(member)
    pages = -(-len(walked_keyset) // PER_PAGE)
    walk = Table(
        f"Reading all {pages:,} pages of the heavy member's {len(walked_keyset):,} cases",
        ["pagination", "total ms", "ms per page"],
    )
    walk.add("keyset (ours)", keyset_walk_time[0] * 1000, keyset_walk_time[0] * 1000 / pages)
    walk.add("OFFSET", offset_walk_time[0] * 1000, offset_walk_time[0] * 1000 / pages)
    setup = Table("Setup", ["step", "seconds", "note"])
    setup.add(
        "generate the cases",
        timings["insert"],
        f"INSERT ... SELECT generate_series, {shape.batches} batches, all indexes in place",
    )
    setup.add("VACUUM ANALYZE", timings["vacuum"], None)
    result.tables += [table, walk, setup]
    result.notes += [
        f"cases: {info['cases']:,} rows, heap {info['heap'] / 2**20:,.0f} MiB, indexes "
        f"{info['indexes'] / 2**20:,.0f} MiB; the heavy member has {info['member']:,} cases, "
        f"the heavy moderator {info['moderator']:,}.",
        "Both ways run through Tortoise and read whole rows. Keyset asks for 11 rows to know "
        "whether a next page exists; OFFSET must walk past the skipped rows in the index "
        "and fetch each from the heap.",
        "The random-member row draws a different guild and member per query "
        "(page 1, so both ways run the same query).",
    ]
    result.facts.update(
        {
            "cases": info["cases"],
            "heavy_member_cases": info["member"],
            "keyset_equals_offset": agree,
            "walk_equal": walked_keyset == walked_offset,
            "walk_complete": len(walked_keyset) == info["member"],
        }
    )
    return result


BENCHMARK = Benchmark(
    "history",
    "moderation history: keyset pages (ours) against OFFSET pages",
    run,
)
