"""leaderboard: one large guild's top page, a deep page and a member's rank, from three places.

- Redis cache: `Leaderboard` over `RedisLeaderboard`, after a full rebuild (timed);
- PostgreSQL + our index: `Leaderboard` over a cache that always misses, so every read takes
  the bot's database path (members_leaderboard_idx (guild_id, coins DESC, user_id));
- tutorial: `ORDER BY balance DESC` on a float column with no index but the primary key
  (table `tutorial_members`, same data), and a rank as a count of the richer members.

Each query runs QUERIES times from one caller (latency, not throughput), after 5 unmeasured
runs, the three sources taking turns. Rank queries ask for a different random member each
time, the same members for each source.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from app.coord.leaderboard_cache import Ranked, RedisLeaderboard, Standing
from app.coord.redis_link import RedisLink
from app.domain.leaderboard import Leaderboard
from bench.data import (
    connect,
    copy_members,
    drop_leaderboard_keys,
    fresh_database,
    open_tortoise,
    tortoise_context,
    vacuum_analyze,
)
from bench.harness import Benchmark, Result, RunContext, Scale, progress, snowflake
from bench.tables import Table, ratio
from bench.timing import Run, interleaved, stopwatch

MEMBERS: dict[Scale, int] = {"tiny": 2_000, "small": 100_000, "full": 1_000_000}
QUERIES: dict[Scale, int] = {"tiny": 20, "small": 200, "full": 200}
PER_PAGE = 10
DEEP_PAGE = 1_000
USER_BASE = 400_000_000_000_000_000
CHUNK = 100_000

Query = Callable[[int], Awaitable[None]]  # query number i -> None (answers are recorded)

TUTORIAL_TABLE = """
CREATE TABLE tutorial_members (
    guild_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    balance DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
)
"""
TUTORIAL_PAGE = (
    "SELECT user_id, balance FROM tutorial_members WHERE guild_id = $1"
    " ORDER BY balance DESC LIMIT $2 OFFSET $3"
)
TUTORIAL_RANK = (
    "SELECT count(*) + 1 FROM tutorial_members WHERE guild_id = $1 AND balance > "
    "(SELECT balance FROM tutorial_members WHERE guild_id = $1 AND user_id = $2)"
)


#: Sources that take turns with each other: a Redis read right after a PostgreSQL scan
#: (whose parallel workers are still winding down) would measure the scan's tail.
REDIS_SOURCES = ("Redis cache", "one Redis command (yardstick)")
DATABASE_SOURCES = ("PostgreSQL + index", "tutorial (no index)")


class MissingCache:
    """A leaderboard cache that never has anything: every read goes to PostgreSQL."""

    async def record(self, guild_id: int, standings: Sequence[Standing]) -> None:
        """Nothing to write."""

    async def page(self, guild_id: int, offset: int, limit: int) -> list[Ranked] | None:
        """Always a miss."""
        return None

    async def rank(self, guild_id: int, user_id: int) -> int | None:
        """Always a miss."""
        return None

    async def rebuild(self, guild_id: int, rows: AsyncIterator[list[Standing]]) -> bool:
        """Never rebuilds (the snapshot is not read)."""
        return False

    async def name(self, guild_id: int, user_id: int, name: str) -> None:
        """Nothing to write."""


def balances(count: int, rng: random.Random) -> list[int]:
    """Log-normal coin balances: most members hold a few thousand, a few hold millions.

    Integers drawn from a continuous law leave many ties among small balances, so the
    tie-break on user id is exercised."""
    return [min(int(rng.lognormvariate(8, 2.5)), 10**12) for _ in range(count)]


async def load(dsn: str, guild_id: int, coins: list[int]) -> dict[str, float]:
    """COPY the members into `members` and `tutorial_members`; returns the timings."""
    timings: dict[str, float] = {}
    async with connect(dsn) as conn:
        await conn.execute(TUTORIAL_TABLE)
        async with stopwatch() as members_time:
            for start in range(0, len(coins), CHUNK):
                rows = [
                    (guild_id, USER_BASE + i, coins[i])
                    for i in range(start, min(start + CHUNK, len(coins)))
                ]
                await copy_members(conn, rows)
        async with stopwatch() as tutorial_time:
            for start in range(0, len(coins), CHUNK):
                rows_t = [
                    (guild_id, USER_BASE + i, float(coins[i]))
                    for i in range(start, min(start + CHUNK, len(coins)))
                ]
                await conn.copy_records_to_table(
                    "tutorial_members", records=rows_t, columns=["guild_id", "user_id", "balance"]
                )
        timings["members"], timings["tutorial"] = members_time[0], tutorial_time[0]
    timings["vacuum"] = await vacuum_analyze(dsn, "members", "tutorial_members")
    return timings


async def sizes(dsn: str) -> dict[str, int]:
    """Bytes on disk of each table with its indexes."""
    async with connect(dsn) as conn:
        return {
            table: await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            for table in ("members", "tutorial_members")
        }


async def run(ctx: RunContext) -> Result:
    """Load, rebuild the cache, then time every query from every source."""
    members, queries = MEMBERS[ctx.scale], QUERIES[ctx.scale]
    pages = -(-members // PER_PAGE)
    deep = min(DEEP_PAGE, max(2, pages // 2))
    rng = random.Random(20261127)
    guild_id = snowflake(rng)
    coins = balances(members, rng)
    asked = [USER_BASE + i for i in rng.sample(range(members), queries)]
    result = ctx.result(
        f"one guild of {members:,} members (log-normal balances); each query "
        f"{queries} times after 5 unmeasured runs, one caller, the Redis sources taking turns, "
        "then the PostgreSQL ones; "
        f"page {deep:,} is OFFSET {(deep - 1) * PER_PAGE:,}; ranks of {queries} random "
        "members."
    )
    async with fresh_database(ctx.server_url) as db, tortoise_context():
        progress(f"loading {members:,} members twice (COPY)")
        timings = await load(db.dsn, guild_id, coins)
        await open_tortoise(db.url, 2)
        link = RedisLink(ctx.redis_url, timeout=10.0)
        cached = Leaderboard(RedisLeaderboard(link))
        database = Leaderboard(MissingCache())
        tutorial = await asyncpg.connect(db.dsn)
        try:
            progress("rebuilding the Redis cache from PostgreSQL")
            async with stopwatch() as rebuild_time:
                rebuilt = await cached.refresh_soon(guild_id)
            timings["rebuild"] = rebuild_time[0]
            answers: dict[str, dict[str, list[Any]]] = {}

            def recorder(source: str, query: str) -> list[Any]:
                return answers.setdefault(query, {}).setdefault(source, [])

            def leaderboard_page(lb: Leaderboard, source: str, number: int) -> Query:
                seen = recorder(source, f"page {number}")

                async def query(i: int) -> None:
                    page = await lb.page(guild_id, number, PER_PAGE)
                    seen.append((page.source, [(e.rank, e.user_id, e.coins) for e in page.entries]))

                return query

            def leaderboard_rank(lb: Leaderboard, source: str) -> Query:
                seen = recorder(source, "rank")

                async def query(i: int) -> None:
                    seen.append(await lb.rank(guild_id, asked[i % len(asked)]))

                return query

            def tutorial_page(number: int) -> Query:
                seen = recorder("tutorial", f"page {number}")

                async def query(i: int) -> None:
                    rows = await tutorial.fetch(
                        TUTORIAL_PAGE, guild_id, PER_PAGE, (number - 1) * PER_PAGE
                    )
                    seen.append([(r["user_id"], r["balance"]) for r in rows])

                return query

            def tutorial_rank() -> Query:
                seen = recorder("tutorial", "rank")

                async def query(i: int) -> None:
                    user_id = asked[i % len(asked)]
                    seen.append(await tutorial.fetchval(TUTORIAL_RANK, guild_id, user_id))

                return query

            def one_command(query_name: str) -> Query:
                """The yardstick: the one Redis command the cached read needs, bare."""
                zset = RedisLeaderboard.keys(guild_id)[0]
                offset = (deep - 1) * PER_PAGE

                async def query(i: int) -> None:
                    if query_name == "rank":
                        await link.client.zrank(zset, f"{asked[i % len(asked)]:020d}")
                    else:
                        first = 0 if query_name == "top" else offset
                        await link.client.zrange(zset, first, first + PER_PAGE, withscores=True)

                return query

            sources = {
                "Redis cache": {
                    "top 10": leaderboard_page(cached, "cache", 1),
                    f"page {deep:,}": leaderboard_page(cached, "cache", deep),
                    "member's rank": leaderboard_rank(cached, "cache"),
                },
                "PostgreSQL + index": {
                    "top 10": leaderboard_page(database, "database", 1),
                    f"page {deep:,}": leaderboard_page(database, "database", deep),
                    "member's rank": leaderboard_rank(database, "database"),
                },
                "tutorial (no index)": {
                    "top 10": tutorial_page(1),
                    f"page {deep:,}": tutorial_page(deep),
                    "member's rank": tutorial_rank(),
                },
                "one Redis command (yardstick)": {
                    "top 10": one_command("top"),
                    f"page {deep:,}": one_command("deep"),
                    "member's rank": one_command("rank"),
                },
            }
            runs: dict[tuple[str, str], Run] = {}
            for query_name in ("top 10", f"page {deep:,}", "member's rank"):
                progress(f"{query_name}, every source in turn")
                for group in REDIS_SOURCES, DATABASE_SOURCES:
                    by_source = await interleaved(
                        {source: sources[source][query_name] for source in group}, queries
                    )
                    for source, one in by_source.items():
                        runs[(query_name, source)] = one
            table_sizes = await sizes(db.dsn)
        finally:
            await tutorial.close()
            await drop_leaderboard_keys(ctx.redis_url, [guild_id])
            await link.close()

    table = Table(
        "Leaderboard queries (one caller; the Redis sources take turns, then the others)",
        ["query", "source", "p50 ms", "p99 ms", "queries/s", "p50 vs tutorial"],
    )
    for query_name in ("top 10", f"page {deep:,}", "member's rank"):
        slow = runs[(query_name, "tutorial (no index)")].p50_ms
        for source in sources:
            measured = runs[(query_name, source)]
            table.add(
                query_name,
                source,
                measured.p50_ms,
                measured.p99_ms,
                measured.ops / sum(measured.latencies),
                ratio(slow, measured.p50_ms),
            )
    setup = Table("Setup", ["step", "seconds", "note"])
    setup.add("COPY into members", timings["members"], "with the unique and leaderboard indexes")
    setup.add("COPY into tutorial_members", timings["tutorial"], "primary key only")
    setup.add("VACUUM ANALYZE both", timings["vacuum"], None)
    setup.add("rebuild the Redis cache", timings["rebuild"], "Leaderboard.refresh_soon, all rows")
    result.tables += [table, setup]
    result.notes += [
        f"members: {table_sizes['members'] / 2**20:,.1f} MiB with indexes; "
        f"tutorial_members: {table_sizes['tutorial_members'] / 2**20:,.1f} MiB.",
        "A rank from PostgreSQL counts the members ahead (more coins, or as many and a "
        "smaller user id): that reads as many rows as the rank, however they are indexed. "
        "For a random member about half the guild is ahead, and the planner scans the table "
        "(in parallel), which is why it is no faster than the tutorial. The cache's ZRANK "
        "costs the same for every member.",
        "one Redis command (yardstick): the bare ZRANGE (11 entries with scores) or ZRANK "
        "the cached read is built on, through the same client, without the Lua script, the "
        "names or the domain around it.",
        "The tutorial's rank counts richer members only (no tie-break), its charitable form; "
        "its pages have no tie-break either, so only their balances are compared.",
    ]
    result.facts.update(_facts(answers, deep, rebuilt))
    return result


def _facts(answers: dict[str, dict[str, list[Any]]], deep: int, rebuilt: bool) -> dict[str, Any]:
    """Structural checks: every source agrees with the others."""
    facts: dict[str, Any] = {"rebuilt": rebuilt}
    for number in (1, deep):
        by_source = answers[f"page {number}"]
        cache, database = by_source["cache"], by_source["database"]
        key = "top" if number == 1 else "deep"
        facts[f"{key}_page_served_by_cache"] = all(src == "cache" for src, _ in cache)
        facts[f"{key}_page_served_by_database"] = all(src == "database" for src, _ in database)
        first = cache[0][1]
        facts[f"{key}_page_rows"] = len(first)
        facts[f"{key}_cache_equals_database"] = all(rows == first for _, rows in cache + database)
        facts[f"{key}_tutorial_balances_equal"] = all(
            [float(c) for _, _, c in first] == [b for _, b in rows]
            for rows in by_source["tutorial"]
        )
    ranks = answers["rank"]
    facts["ranks_cache_equals_database"] = ranks["cache"] == ranks["database"]
    facts["ranks_tutorial_not_after_ours"] = all(
        t <= d for t, d in zip(ranks["tutorial"], ranks["database"], strict=True)
    )
    return facts


BENCHMARK = Benchmark(
    "leaderboard",
    "leaderboard pages and ranks: Redis cache, PostgreSQL index, tutorial",
    run,
)
