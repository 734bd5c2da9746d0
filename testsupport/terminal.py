"""A program on a pseudo-terminal, driven as a person at a keyboard would (console tests).

The program gets the terminal as its controlling terminal (`pty.fork`), so Ctrl-C typed in
cooked mode would reach it, and any `make` around it, as SIGINT, exactly as in a real shell.
Cursor position requests are answered, as a terminal emulator does.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import termios
from collections.abc import Mapping, Sequence
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()][0-9A-B]?")
_CPR_REQUEST = "\x1b[6n"
KEYS = {"ctrl-c": "\x03", "ctrl-d": "\x04", "enter": "\r"}


def plain(text: str) -> str:
    """``text`` without escape sequences and carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


class PseudoTerminal:
    """One program on a pseudo-terminal of `columns` x `rows`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        columns: int = 120,
        rows: int = 40,
    ) -> None:
        self.argv, self.cwd, self.env = list(argv), cwd, dict(env)
        self.size = struct.pack("HHHH", rows, columns, 0, 0)
        self.raw = ""  # everything the program wrote, escape sequences included
        self.pid = 0
        self.fd = -1
        self.ended = False
        self._changed = asyncio.Event()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._seen = 0  # how much of `output` expect() has consumed

    async def start(self) -> PseudoTerminal:
        """Fork and exec the program on a new pseudo-terminal."""
        env = {**self.env, "TERM": "xterm-256color"}
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once
            try:
                os.chdir(self.cwd)
                os.execvpe(self.argv[0], self.argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, self.size)
        asyncio.get_running_loop().add_reader(fd, self._read)
        return self

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program closed the terminal (it exited)
            data = b""
        if not data:
            self.ended = True
            asyncio.get_running_loop().remove_reader(self.fd)
        else:
            text = self._decoder.decode(data)
            self.raw += text
            for _ in range(text.count(_CPR_REQUEST)):
                os.write(self.fd, b"\x1b[1;1R")
        self._changed.set()

    @property
    def output(self) -> str:
        """What the program showed, without escape sequences."""
        return plain(self.raw)

    async def expect(self, pattern: str, within: float = 30.0) -> str:
        """Wait until the output after the last match shows `pattern` (a regex); the text up
        to the end of the match."""
        regex = re.compile(pattern)
        async with asyncio.timeout(within):
            while True:
                output = self.output
                found = regex.search(output, self._seen)
                if found:
                    self._seen = found.end()
                    return output[: found.end()]
                if self.ended:
                    break
                self._changed.clear()
                await self._changed.wait()
        raise AssertionError(f"the program ended without showing {pattern!r}:\n{self.output}")

    def type(self, text: str) -> None:
        """Type `text` (no Enter)."""
        os.write(self.fd, text.encode())

    def press(self, key: str) -> None:
        """Press ``ctrl-c``, ``ctrl-d`` or ``enter``."""
        os.write(self.fd, KEYS[key].encode())

    async def exit_code(self, within: float = 30.0) -> int:
        """Wait for the program to end: its exit code (-N when signal N ended it)."""
        _, status = await asyncio.wait_for(asyncio.to_thread(os.waitpid, self.pid, 0), within)
        self.pid = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):  # the rest of its output
                while not self.ended:
                    self._changed.clear()
                    await self._changed.wait()
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Kill the program if it still runs; close the terminal."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.pid = 0
        if self.fd >= 0:
            if not self.ended:
                asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
