"""The console's log: every record to a file, warnings and errors as one line on screen.

On a terminal the screen line goes above the prompt (sandbox.console_terminal), never between
the prompt and what is being typed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console as RichConsole
from rich.text import Text


class ScreenLog(logging.Handler):
    """Warnings and errors as one line on the console (the whole record is in the file)."""

    def __init__(self, out: RichConsole, where: Path) -> None:
        super().__init__(logging.WARNING)
        self.out, self.where = out, where

    def emit(self, record: logging.LogRecord) -> None:
        """One dim line: level, logger and the first line of the message."""
        try:
            first = record.getMessage().splitlines()[0] if record.getMessage() else ""
            style = "red" if record.levelno >= logging.ERROR else "yellow"
            line = Text(f"{record.levelname.lower()} {record.name}: {first}", style=style)
            line.append(f"  (details: {self.where})", style="dim")
            self.out.print(line)
        except Exception:  # a log line must never break the console
            self.handleError(record)


def route_logs(out: RichConsole, path: Path) -> None:
    """Send every log record to ``path`` (appended) and warnings and errors to the screen.

    A program that configured no logging gets INFO records in the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        root.setLevel(logging.INFO)
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = [to_file, ScreenLog(out, path)]
