"""Every registered benchmark runs at `--scale tiny` and its structural facts hold.

No timing is asserted: only that each benchmark completes, prints its tables, and that what
must be true whatever the speed is true (ours and raw conserve coins; the cache and the
database return the same pages; keyset and OFFSET pages hold the same rows; every command
through the sandbox is answered; our processes start without a single op 9; the bank audit
finds no anomaly after every kind of fault, in the ledger and in the case log; the shared REST
budget keeps 3 pods within the sandbox's global limit, without a 429, every command answered;
a reshard loses no command and leaves no guild unserved, unlike the stop and start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import registry
from tests.services import pg_base_url, redis_url

ROOT = Path(__file__).resolve().parents[2]


#: Seconds a benchmark may take at scale tiny before the test gives up (2 busy cores).
TIMEOUTS = {
    "commands": 180,
    "memory": 150,
    "startup": 150,
    "bank": 240,
    "budget": 200,
    "scale": 120,
    "reshard": 150,
}


def run_tiny(name: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """Run one benchmark in a child process; return its stdout and its JSON result."""
    env = {**os.environ, "TEST_DATABASE_URL": pg_base_url(), "TEST_REDIS_URL": redis_url()}
    out = tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, "--scale", "tiny", "--no-write", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUTS.get(name, 120),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())[name]
    assert result["scale"] == "tiny"
    for table in result["tables"]:
        assert table["title"] in done.stdout
        assert table["rows"], f"table {table['title']!r} is empty"
    return done.stdout, result


def check_transfers(stdout: str, result: dict[str, Any]) -> None:
    cells = result["facts"]["cells"]
    implementations = {cell["implementation"] for cell in cells}
    assert {
        "ours",
        "ours, one hold per lock (before)",
        "ours, model code (before)",
        "raw asyncpg + ledger",
        "raw asyncpg",
        "tutorial",
    } <= implementations
    assert any(i.startswith("ours, 2 processes") for i in implementations)
    paths = result["facts"]["redis_path"]
    assert len(paths) == 3 and all(set(outcomes) == {"ok"} for outcomes in paths.values()), paths
    assert {(c["pattern"], c["callers"]) for c in cells} == {
        (p, n) for p in ("uniform", "hot") for n in (1, 8, 64)
    }
    for cell in cells:
        assert cell["ops"] > 0
        assert set(cell["outcomes"]) <= {"ok", "refused"}
        if cell["implementation"] != "tutorial":
            assert cell["created"] == 0, cell  # ours and raw conserve coins exactly
        if cell["implementation"].startswith("ours") or "ledger" in cell["implementation"]:
            assert cell["ledger_mismatches"] == 0, cell
            assert cell["ledger_transfers"] == cell["ok_including_warmup"], cell
        if cell["callers"] == 1:
            assert cell["created"] == 0, cell  # one caller cannot lose an update


def check_leaderboard(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    assert facts["rebuilt"]
    for key in ("top", "deep"):
        assert facts[f"{key}_page_rows"] == 10
        assert facts[f"{key}_page_served_by_cache"]
        assert facts[f"{key}_page_served_by_database"]
        assert facts[f"{key}_cache_equals_database"]
        assert facts[f"{key}_tutorial_balances_equal"]
    assert facts["ranks_cache_equals_database"]
    assert facts["ranks_tutorial_not_after_ours"]


def check_history(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    assert facts["cases"] == 20_000
    assert facts["keyset_equals_offset"] and all(facts["keyset_equals_offset"].values()), facts
    assert facts["walk_equal"] and facts["walk_complete"]


def check_search(stdout: str, result: dict[str, Any]) -> None:
    agree = result["facts"]["same_rows"]
    assert len(agree) == 5 and all(agree.values()), agree


def check_commands(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    steps = facts["steps"]
    assert {(s["bot"], s["workload"]) for s in steps} == {
        ("ours", "transfer"),
        ("ours", "balance"),
        ("ours", "chat (XP, level-up)"),
        ("bare discord.py", "/ping"),
        ("bare discord.py", "message ping"),
    }
    for step in steps:
        assert step["sent"] > 0, step
        assert step["outcomes"] == {"ok": step["sent"]}, step  # every command answered, no ❌
        assert step["answered"] == step["sent"], step
    assert sum(1 for s in steps if s["load"].startswith("saturation")) == 5
    for check in facts["chat_checks"]:
        assert check["rows"] == check["level_ups_seen"] > 0, check  # XP landed in the database
    for transfers in facts["transfers"].values():
        assert transfers["in_ledger"] == transfers["answered_ok"] > 0, facts["transfers"]


def check_memory(stdout: str, result: dict[str, Any]) -> None:
    samples = result["facts"]["samples"]
    assert {s["bot"] for s in samples} == {
        "ours (GuildBot)",
        "discord.py defaults + members",
        "discord.py defaults",
    }
    assert len({s["guilds"] for s in samples}) == 2
    for sample in samples:
        assert sample["rss_bytes"] > 0 and sample["peak_bytes"] >= sample["rss_bytes"], sample
        assert sample["cached_guilds"] == sample["guilds"], sample  # every guild loaded
        if sample["bot"] == "discord.py defaults + members":
            assert sample["cached_members"] == 100 * sample["guilds"], sample


def check_startup(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    starts = facts["starts"]
    assert {(s["bot"].split()[0], s["max_concurrency"]) for s in starts} == {
        (bot, mc) for bot in ("ours", "bare") for mc in (1, 4)
    }
    for start in starts:
        assert start["accepted"] >= facts["shards"], start  # every shard READY
        if start["bot"].startswith("ours"):
            assert start["rejected"] == 0, start  # not a single op 9
            assert start["accepted"] == facts["shards"], start
            assert start["duplicates"] == 0, start


def check_bank(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    assert facts["anomalies"] == {}, "\n".join(map(repr, facts["anomaly_examples"]))
    assert len(facts["anomaly_kinds_checked"]) >= 10
    for kind in (
        "kill",
        "kill mid-ban",
        "postgres",
        "postgres-pause",
        "redis",
        "late-replay",
        "reconnect",
        "drop",
    ):
        assert facts["faults"].get(kind, 0) >= 1, facts["faults"]
    assert "lease granted within a new epoch" in facts["anomaly_kinds_checked"]
    assert "in the ledger, not acknowledged within Discord's 3 s" in facts["anomaly_kinds_checked"]
    assert facts["acknowledged_in_time"] > 0
    assert facts["replies_lost_to_a_kill"] <= facts["unknown_applied"]
    assert facts["sent"] > 0 and facts["replies"].get("done", 0) > 0, facts["replies"]
    assert facts["total_coins"] == facts["expected_coins"]
    kills = facts["faults"]["kill"] + facts["faults"].get("kill mid-ban", 0)
    assert facts["pod_starts"] >= 4 + kills
    moderation = facts["moderation"]  # bans and tempbans under the same nemesis, audited
    assert moderation["orders"].get("ban done", 0) > 0, moderation
    assert moderation["orders"].get("tempban done", 0) > 0, moderation
    assert moderation["cases"] > 0 and len(facts["anomaly_kinds_checked"]) >= 20


def check_budget(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    shared, away, baseline = facts["outcomes"]
    assert [o["mode"] for o in facts["outcomes"]] == [
        "shared limiter",
        "shared limiter, Redis away",
        "off (baseline)",
    ]
    assert 0 < shared["busiest"] <= facts["limit"], shared
    assert (shared["global_429"], shared["route_429"], shared["invalid"]) == (0, 0, 0), shared
    for kind, counts in shared["answers"].items():  # every command answered, none with ❌
        assert counts["ok"] > 0 and counts["error"] == counts["unanswered"] == 0, (kind, counts)
    figures = away["away"]  # Redis away: no second above the limit, while away or after
    assert figures["length_s"] > 0 and away["busiest"] <= facts["limit"], away
    assert figures["global_429_away"] == figures["global_429_back"] == 0, away
    assert baseline["calls"] > 0 and set(baseline["answers"]) == set(shared["answers"])


def check_scale(stdout: str, result: dict[str, Any]) -> None:
    facts = result["facts"]
    moves = facts["moves"]
    assert {m["mode"] for m in moves} == {"eager", "snapshot"}  # the modes run at tiny
    assert [m["step"] for m in moves] == ["2 -> 3", "3 -> 2"] * 2
    for move in moves:
        assert move["lost"] == 0 and move["twice"] == 0 and move["identifies"] == 0, move
        calls_per_guild = 3 if move["mode"] == "eager" else 0  # snapshot: no REST at all
        assert move["rest_calls"] == calls_per_guild * move["guilds"], move
        assert 0 <= move["unserved_s"] <= move["ready_s"], move
    for counts in facts["background"].values():
        assert counts["sent"] > 0 and counts["twice"] == 0, counts


def check_reshard(stdout: str, result: dict[str, Any]) -> None:
    baseline, ours = result["facts"]["outcomes"]
    assert (baseline["way"], ours["way"]) == ("stop and start", "reshard")
    for outcome in (baseline, ours):
        assert outcome["identifies"] == 8 and outcome["refused"] == 0, outcome
        assert outcome["commands"]["sent"] > 0 and outcome["commands"]["twice"] == 0, outcome
    assert ours["commands"]["unanswered"] == 0, ours  # no command lost to the reshard
    assert ours["longest_gap_s"] < 1.0, ours  # nothing unserved beyond a sample or two
    assert baseline["longest_gap_s"] > ours["longest_gap_s"], (baseline, ours)


CHECKS = {
    "transfers": check_transfers,
    "leaderboard": check_leaderboard,
    "history": check_history,
    "search": check_search,
    "commands": check_commands,
    "memory": check_memory,
    "startup": check_startup,
    "bank": check_bank,
    "budget": check_budget,
    "scale": check_scale,
    "reshard": check_reshard,
}


def test_every_benchmark_has_checks() -> None:
    assert set(CHECKS) == set(registry.names())


@pytest.mark.parametrize("name", registry.names())
def test_benchmark_runs_at_tiny_scale(name: str, tmp_path: Path) -> None:
    stdout, result = run_tiny(name, tmp_path)
    CHECKS[name](stdout, result)
