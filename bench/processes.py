"""Bot processes for the Discord-level benchmarks, and what /proc says about them.

A `BotProcess` is one `python -m app run` (the bot as a pod runs it) or one of the bench's own
bare discord.py bots (`python -m bench.barebot`), pointed at an in-process sandbox. Its stderr
goes to a log file (kept for post-mortems) and a short tail in memory; its CPU time and resident
memory are read from /proc.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import aiohttp

from app.sandbox import SandboxServer
from bench.services import free_port

REPO = Path(__file__).resolve().parents[1]
#: Any token does for the sandbox (it checks none unless started with one).
TOKEN = "sandbox-token"
#: Settings the bot reads from the environment: never inherited from the caller's shell.
BOT_SETTINGS = {
    "DATABASE_URL",
    "REDIS_URL",
    "SHARD_COUNT",
    "SHARD_IDS",
    "SHARDS_PER_POD",
    "POD_INDEX",
    "DISCORD_TOKEN",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "MESSAGE_CONTENT_INTENT",
    "COMMAND_PREFIX",
    "OPS_PORT",
    "IDENTIFY_WINDOW_S",
    "LEASE_TTL_S",
    "REBALANCE_GRACE_S",
    "LOG_LEVEL",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def bot_env(server: SandboxServer, **settings: str) -> dict[str, str]:
    """The environment of a bot process against `server`: the caller's, minus every bot
    setting, plus the sandbox's addresses, a token, and `settings` (upper-case names)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in BOT_SETTINGS}
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_BASE=server.rest_base,
        DISCORD_GATEWAY_URL=server.gateway_url,
        LOG_LEVEL="WARNING",
    )
    env.update(settings)
    return env


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS in /proc/PID/status; VmHWM: its peak so far);
    0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/PID/stat); NaN when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = raw.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class BotProcess:
    """One bot process. `module` is run with `python -m`; its stderr is logged to `log_path`."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        workdir: Path,
        module: str = "app",
        args: tuple[str, ...] = ("run",),
    ) -> None:
        self.name, self.env, self.workdir = name, dict(env), workdir
        self.module, self.args = module, args
        self.ops_port = int(self.env.get("OPS_PORT", "0")) or None
        self.log_path = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        self.lines_seen = 0
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.started_at = 0.0
        self.starts = 0

    @classmethod
    def guildbot(
        cls, name: str, server: SandboxServer, workdir: Path, **settings: str
    ) -> BotProcess:
        """`python -m app run` with an ops port of its own, against `server`."""
        env = bot_env(server, OPS_PORT=str(free_port()), **settings)
        return cls(name, env, workdir)

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
        with self.log_path.open("a") as log:
            log.write(f"--- {self.name} pid {proc.pid} started ---\n")
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                log.write(line + "\n")
                async with self._changed:
                    self.tail.append(line)
                    self.lines_seen += 1
                    self._changed.notify_all()
            log.write(f"--- {self.name} pid {proc.pid} ended ---\n")
        async with self._changed:
            self._changed.notify_all()

    async def wait_log(self, text: str, within: float = 60.0) -> str:
        """Wait for a stderr line containing `text` (from now on or still in the tail)."""
        async with asyncio.timeout(within), self._changed:
            while True:
                for line in self.tail:
                    if text in line:
                        return line
                if not self.running:
                    raise RuntimeError(f"{self.name} exited before logging {text!r}:\n{self.log()}")
                await self._changed.wait()

    def log(self, lines: int = 40) -> str:
        """The last lines of its stderr."""
        return "\n".join(list(self.tail)[-lines:])

    def errors(self) -> list[str]:
        """JSON log lines at ERROR or above still in the tail."""
        found = []
        for line in self.tail:
            with contextlib.suppress(ValueError):
                if json.loads(line).get("level") in ("ERROR", "CRITICAL"):
                    found.append(line)
        return found

    async def http(self, path: str) -> tuple[int, str] | None:
        """GET an ops endpoint; None when it does not answer."""
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
                raise RuntimeError(f"{self.name} exited before it was ready:\n{self.log()}")
            answer = await self.http("/readyz")
            if answer is not None and answer[0] == 200:
                return time.monotonic() - self.started_at
            await asyncio.sleep(0.05)  # polling another process's HTTP endpoint
        raise TimeoutError(f"{self.name} not ready within {within:g} s:\n{self.log()}")

    def rss(self, field: str = "VmRSS") -> int:
        """Resident memory in bytes (field="VmHWM": the peak so far)."""
        return rss_bytes(self.pid, field) if self.running else 0

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return cpu_seconds(self.pid) if self.proc is not None else float("nan")

    async def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        await self._reap()

    async def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM (the bot drains and hands its shards over), SIGKILL after `within` s."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
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


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A directory for the bot processes' logs: removed after a clean run, kept (and named on
    stderr) when the benchmark failed, or always with BENCH_KEEP_LOGS=1."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException:
        print(f"  .. bot logs kept in {path}", file=sys.stderr, flush=True)
        raise
    if os.environ.get("BENCH_KEEP_LOGS") == "1":
        print(f"  .. bot logs kept in {path}", file=sys.stderr, flush=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


async def stop_all(processes: list[BotProcess], within: float = 30.0) -> None:
    """SIGTERM every process at once and wait for them."""
    await asyncio.gather(*(p.stop(within) for p in processes), return_exceptions=True)
