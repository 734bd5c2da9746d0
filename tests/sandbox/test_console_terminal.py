"""The console at a terminal (a pseudo-terminal): Ctrl-C and Ctrl-D as in a shell, also under
`make`, which must never see an interrupt."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sandbox_helpers import HERE, PYTHON, subprocess_env

from testsupport.terminal import PseudoTerminal

pytestmark = pytest.mark.slow
PROMPT = r"alice #general › "
NOISE = ("Traceback", "KeyboardInterrupt", "Interrupt", "CancelledError")

Open = Callable[..., PseudoTerminal]


@pytest.fixture
async def terminal(tmp_path: Path) -> AsyncIterator[Open]:
    """Starts the console with the tiny bot (`open(*argv)` instead: another program)."""
    opened: list[PseudoTerminal] = []

    def open_(*argv: str) -> PseudoTerminal:
        console = (PYTHON, "console_entry.py", "--log-file", str(tmp_path / "console.log"))
        term = PseudoTerminal(argv or console, cwd=HERE, env=subprocess_env())
        opened.append(term)
        return term

    yield open_
    for term in opened:
        term.close()


async def test_ctrl_c_clears_the_line_and_twice_on_an_empty_line_quits(terminal: Open) -> None:
    term = await terminal().start()
    await term.expect(PROMPT, within=60)
    term.type("/daily")
    term.press("ctrl-c")  # the line is dropped: /daily never runs
    await term.expect(PROMPT)
    term.type("/balance")
    term.press("enter")
    await term.expect("Alice has 100 coins")  # 150 had /daily run
    await term.expect(PROMPT)
    term.press("ctrl-c")
    await term.expect(r"\(Ctrl-C again or Ctrl-D to quit\)")
    term.press("ctrl-c")
    assert await term.exit_code() == 0
    assert [word for word in NOISE if word in term.output] == [], term.output


async def test_ctrl_c_stops_a_command_and_ctrl_d_quits(terminal: Open) -> None:
    term = await terminal(PYTHON, "console_entry.py", "--reply-timeout", "60").start()
    await term.expect(PROMPT, within=60)
    term.type("/never")
    term.press("enter")
    await term.expect(r"/never\s*\n")  # accepted: the command runs
    started = time.monotonic()
    term.press("ctrl-c")
    await term.expect(r"\(stopped\)")
    assert time.monotonic() - started < 10  # not the 60 s reply timeout
    await term.expect(PROMPT)
    term.type("/roll 2 count:3")  # the console still works
    term.press("enter")
    await term.expect("total: 6")
    await term.expect(PROMPT)
    term.press("ctrl-d")
    assert await term.exit_code() == 0
    assert [word for word in NOISE if word in term.output] == [], term.output


async def test_make_around_the_console_exits_0_without_interrupt(
    terminal: Open, tmp_path: Path
) -> None:
    """Ctrl-C at the prompt is a key, not SIGINT: make never hears of it (no "Interrupt")."""
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        f"run:\n\t@cd {HERE} && {PYTHON} console_entry.py --log-file {tmp_path / 'log'}\n"
    )
    term = await terminal("make", "--no-print-directory", "-f", str(makefile), "run").start()
    await term.expect(PROMPT, within=60)
    term.type("half a line")
    term.press("ctrl-c")
    await term.expect(PROMPT)
    term.press("ctrl-c")
    term.press("ctrl-c")
    assert await term.exit_code() == 0
    assert [word for word in (*NOISE, "***") if word in term.output] == [], term.output


async def test_lines_typed_while_a_command_runs_run_next(terminal: Open) -> None:
    term = await terminal(PYTHON, "console_entry.py", "--reply-timeout", "3").start()
    await term.expect(PROMPT, within=60)
    term.type("/never")
    term.press("enter")
    await term.expect(r"/never\s*\n")
    term.type("/roll 2 count:3")  # while /never waits for an answer that never comes
    term.press("enter")
    term.type("/bal")
    await term.expect("the application did not respond")
    await term.expect("total: 6")
    await term.expect(PROMPT + "/bal")  # the start of the next line, ready to finish
    term.type("ance")
    term.press("enter")
    await term.expect("Alice has 100 coins")
    await term.expect(PROMPT)
    term.press("ctrl-d")
    assert await term.exit_code() == 0
