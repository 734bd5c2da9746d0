"""The harness's pure parts: percentiles, tables and the report's marker sections."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.__main__ import parse, recorded
from bench.harness import Result
from bench.report import Environment, markers, render, replace_section, write_section
from bench.tables import Table, ratio
from bench.timing import percentile


def test_percentile_interpolates() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile(list(map(float, range(101))), 99) == pytest.approx(99.0)
    assert math.isnan(percentile([], 50))


def test_ratio() -> None:
    assert ratio(1.0, 4.0) == "0.2x"
    assert ratio(123.0, 1.0) == "123x"
    assert ratio(1.0, 0.0) == "-"


def test_table_renders_text_and_markdown() -> None:
    table = Table("T", ["name", "rate"])
    table.add("a", 1234.5)
    table.add("bb", 2.0)
    text = table.text().splitlines()
    assert text[0] == "T"
    assert text[3].endswith("1,234") and text[4].endswith(" 2.00")
    markdown = table.markdown()
    assert "| name | rate |" in markdown and "|---|---:|" in markdown
    with pytest.raises(ValueError):
        table.add("only one cell")


def test_sections_replace_only_their_own_span(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "benchmarks.md"
    write_section(path, "a", "first A")
    write_section(path, "b", "first B")
    document = path.read_text()
    document += "\nhand-written text\n"
    path.write_text(document)
    write_section(path, "a", "second A")
    text = path.read_text()
    start, end = markers("a")
    assert f"{start}\nsecond A\n{end}" in text
    assert "first A" not in text and "first B" in text and "hand-written text" in text
    assert text.index(markers("a")[0]) < text.index(markers("b")[0])
    assert replace_section("x", "c", "C").endswith(f"{markers('c')[0]}\nC\n{markers('c')[1]}\n")


def test_command_line_ignores_a_bare_double_dash() -> None:
    args = parse(["transfers", "--", "--scale", "full"])
    assert args.names == ["transfers"] and args.scale == "full"
    with pytest.raises(SystemExit):
        parse(["no-such-benchmark"])


def test_recorded_command_drops_the_json_copy() -> None:
    argv = ["leaderboard", "--", "--scale", "full", "--json", "/tmp/x.json"]
    assert recorded(argv) == ["leaderboard", "--scale", "full"]
    assert recorded(["--json=/tmp/x", "history"]) == ["history"]


def test_report_names_a_benchmarks_own_servers() -> None:
    env = Environment("CPU", 2, 4.0, "Linux", "3.11", "asyncpg", "15.1", "fsync=off", "7.0")
    result = Result("bank", "T", "tiny", "summary", servers=["PostgreSQL of its own"])
    text = render(result, env, "python -m bench bank", 1.0)
    assert "- PostgreSQL of its own" in text and "Redis 7.0" not in text
    plain = render(Result("x", "T", "tiny", "summary"), env, "python -m bench x", 1.0)
    assert "- PostgreSQL 15.1 (fsync=off), same machine" in plain and "Redis 7.0" in plain
