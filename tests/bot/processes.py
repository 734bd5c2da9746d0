"""Bots as separate processes (`python -m app.bot`), as they run in production pods."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from app.sandbox import SandboxServer
from tests.bot.harness import TOKEN

REPO = Path(__file__).resolve().parents[2]


def bot_env(server: SandboxServer, db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for a bot process against `server` (nothing from the developer's .env)."""
    settings = {
        "DATABASE_URL",
        "REDIS_URL",
        "SHARD_COUNT",
        "SHARD_IDS",
        "SHARDS_PER_POD",
        "POD_INDEX",
        "DISCORD_TOKEN",
        "MESSAGE_CONTENT_INTENT",
        "COMMAND_PREFIX",
    }
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_BASE=server.rest_base,
        DISCORD_GATEWAY_URL=server.gateway_url,
        LOG_LEVEL="INFO",
    )
    env.update({"OPS_PORT": "0", "IDENTIFY_WINDOW_S": "0.1", "LEASE_TTL_S": "3", **extra})
    return env


class BotProcess:
    """One bot process; its log lines are collected so tests can wait for them."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.ended = False

    async def start(self) -> BotProcess:
        """Start `python -m app.bot` in the work directory."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.bot",
            env=self.env,
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    def logged(self, text: str) -> bool:
        """Whether any log line so far contains `text`."""
        return any(text in line for line in self.lines)

    async def wait_log(self, text: str, within: float = 30.0) -> None:
        """Wait until a log line contains `text` (fails if the process ends first)."""
        async with asyncio.timeout(within), self._changed:
            while not self.logged(text):
                if self.ended:
                    raise AssertionError(f"bot exited before logging {text!r}:\n" + self.log())
                await self._changed.wait()

    def log(self) -> str:
        """The whole log so far."""
        return "\n".join(self.lines)

    async def stop(self, within: float = 30.0) -> int:
        """SIGTERM, then the exit code once it has drained and closed."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(within):
            code = await self.proc.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def kill(self) -> None:
        """Make sure the process is gone (teardown after a failed test)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
