"""The console on a terminal: line editing and history (prompt_toolkit), Ctrl-C and Ctrl-D as
in a shell, and log lines kept out of the prompt.

- Ctrl-C on a line with text clears it; on an empty line it says how to quit, and a second
  Ctrl-C in a row quits. Ctrl-D on an empty line quits.
- While a line runs, Ctrl-C stops it. The terminal stays in raw mode from the first prompt to
  the end (:meth:`Terminal.keys_only`), so Ctrl-C is a key and never a SIGINT: `make run`
  around the console is never interrupted and exits 0 when the console quits.
- Output printed while the prompt shows (log lines: sandbox.console_logs) goes above it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console as RichConsole
from rich.text import Text

T = TypeVar("T")
QUIT_HINT = "(Ctrl-C again or Ctrl-D to quit)"


class _Interrupted(Exception):
    """Ctrl-C at the prompt; ``had_text`` when it cleared a line."""

    def __init__(self, had_text: bool) -> None:
        super().__init__("interrupted")
        self.had_text = had_text


def _bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        event.app.exit(exception=_Interrupted(bool(event.app.current_buffer.text)))

    return bindings


class Terminal:
    """Reads lines at a prompt and runs each one so that Ctrl-C can stop it."""

    def __init__(self, out: RichConsole) -> None:
        self.out = out
        self.session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), key_bindings=_bindings()
        )
        #: Lines typed (Enter included) while a line ran: they run next, in order.
        self.typed_lines: deque[str] = deque()
        #: Printable keys typed while a line ran, after the last Enter: the next line's start.
        self.typed_ahead = ""

    @contextmanager
    def keys_only(self) -> Iterator[None]:
        """Raw mode for the whole session: between prompts too, Ctrl-C stays a key."""
        with self.session.input.raw_mode():
            yield

    async def read(self, prompt: str) -> str | None:
        """The next line, or None to quit (Ctrl-D, or Ctrl-C twice on an empty line)."""
        if self.typed_lines:
            line = self.typed_lines.popleft()
            self.out.print(Text(prompt, style="bold green").append(line, style="default"))
            return line
        armed = False
        while True:
            default, self.typed_ahead = self.typed_ahead, ""
            try:
                with patch_stdout(raw=True):  # output meanwhile goes above the prompt
                    return await self.session.prompt_async(
                        ANSI(f"\x1b[1;32m{prompt}\x1b[0m"), default=default, handle_sigint=False
                    )
            except EOFError:
                return None
            except _Interrupted as interrupt:
                if interrupt.had_text:
                    armed = False
                elif armed:
                    return None
                else:
                    armed = True
                    self.out.print(Text(QUIT_HINT, style="dim"))

    async def run(self, work: Awaitable[T]) -> T | None:
        """Await ``work``; Ctrl-C meanwhile stops it (None) and drops what was typed ahead.
        Other keys are kept: whole lines run next, the rest starts the next prompt."""
        task = asyncio.ensure_future(work)
        keys = self.session.input
        stopped = False

        def on_keys() -> None:
            nonlocal stopped
            for press in keys.read_keys():
                if press.key == Keys.ControlC:
                    stopped = True
                    task.cancel()
                    self.typed_lines.clear()
                    self.typed_ahead = ""
                elif press.key in (Keys.ControlM, Keys.ControlJ):
                    self.typed_lines.append(self.typed_ahead)
                    self.typed_ahead = ""
                elif press.key in (Keys.Backspace, Keys.ControlH):
                    self.typed_ahead = self.typed_ahead[:-1]
                elif len(press.data) == 1 and press.data.isprintable():
                    self.typed_ahead += press.data

        with keys.raw_mode(), keys.attach(on_keys):
            try:
                return await task
            except asyncio.CancelledError:
                if not stopped:
                    raise
        self.out.print(Text("(stopped)", style="dim"))
        return None
