"""Bot processes, as pods run them: `python -m app run` (or another module) in a child process.

A `BotProcess` logs its stderr to `workdir/NAME.log` (kept for post-mortems) and keeps its
lines in memory (the last `keep`, or all), so that callers can wait for a line; its ops
endpoints (/readyz, /metrics) answer on the port given as OPS_PORT.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from testsupport.bots import bot_env
from testsupport.servers import free_port

if TYPE_CHECKING:
    from sandbox import SandboxServer

#: Lines of a process's log quoted when it failed to do what was awaited.
QUOTED_LINES = 40


class BotProcess:
    """One bot process. `module` is run with `python -m` and `args`, in `workdir`."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        workdir: Path,
        *,
        module: str = "app",
        args: Sequence[str] = ("run",),
        keep: int | None = None,
    ) -> None:
        self.name, self.env, self.workdir = name, dict(env), workdir
        self.module, self.args = module, tuple(args)
        self.ops_port = int(self.env.get("OPS_PORT", "0")) or None
        self.log_path = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        #: Its stderr lines so far (the last `keep` of them when `keep` is given).
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self.ended = False  # stderr closed: the process is gone
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.started_at = 0.0
        self.starts = 0

    @classmethod
    def guildbot(
        cls, name: str, server: SandboxServer, workdir: Path, *, keep: int | None = None, **env: str
    ) -> BotProcess:
        """`python -m app run` against `server`, with an ops port of its own and `env`."""
        return cls(name, bot_env(server, OPS_PORT=str(free_port()), **env), workdir, keep=keep)

    @property
    def pid(self) -> int:
        """The process id (after start)."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        """Started and not exited."""
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> BotProcess:
        """Start the process (a fresh one if it ran before)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ended = False
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            env=self.env,
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self.started_at = time.monotonic()
        self.starts += 1
        self._reader = asyncio.create_task(self._read(self.proc))
        return self

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with self.log_path.open("a", buffering=1) as log:  # line by line: readable mid-run
            log.write(f"--- {self.name} pid {proc.pid} started ---\n")
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                log.write(line + "\n")
                async with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
            log.write(f"--- {self.name} pid {proc.pid} ended ---\n")
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    def _failed(self, what: str) -> str:
        return f"{self.name} {what}:\n{self.log(QUOTED_LINES)}\n(whole log: {self.log_path})"

    def logged(self, text: str) -> bool:
        """Whether a line it kept contains `text`."""
        return any(text in line for line in self.lines)

    async def wait_log(self, text: str, within: float = 60.0) -> str:
        """Wait for a line containing `text` (already kept or still to come); that line.
        Fails when the process ends first."""
        async with asyncio.timeout(within), self._changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if self.ended:
                    raise AssertionError(self._failed(f"exited before logging {text!r}"))
                await self._changed.wait()

    def log(self, lines: int | None = None) -> str:
        """The lines it kept (the last `lines` of them when given)."""
        kept = list(self.lines)
        return "\n".join(kept if lines is None else kept[-lines:])

    def errors(self) -> list[str]:
        """JSON log lines at ERROR or above among those kept."""
        found = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                if json.loads(line).get("level") in ("ERROR", "CRITICAL"):
                    found.append(line)
        return found

    async def http(self, path: str) -> tuple[int, str] | None:
        """GET an ops endpoint: (status, body); None when it does not answer."""
        if self.ops_port is None:
            return None
        url = f"http://127.0.0.1:{self.ops_port}{path}"
        try:
            timeout = aiohttp.ClientTimeout(total=3)
            async with aiohttp.ClientSession(timeout=timeout) as s, s.get(url) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_ready(self, within: float = 120.0) -> float:
        """Wait until /readyz answers 200 (every owned shard READY, database up); returns the
        seconds since start."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running:
                raise AssertionError(self._failed("exited before it was ready"))
            answer = await self.http("/readyz")
            if answer is not None and answer[0] == 200:
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.05)  # polling another process's HTTP endpoint
        raise TimeoutError(self._failed(f"not ready within {within:g} s"))

    async def kill(self) -> None:
        """SIGKILL and reap."""
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        await self._reap()

    async def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM (the bot drains and hands its shards over), SIGKILL after `within` s; the
        exit code (None when it never started)."""
        if self.proc is None:
            return None
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), within)
            except TimeoutError:
                await self.kill()
        await self._reap()
        return self.proc.returncode

    async def _reap(self) -> None:
        if self.proc is not None:
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)
            self._reader = None


async def stop_all(processes: Sequence[BotProcess], within: float = 30.0) -> None:
    """SIGTERM every process at once and wait for them."""
    await asyncio.gather(*(p.stop(within) for p in processes), return_exceptions=True)
