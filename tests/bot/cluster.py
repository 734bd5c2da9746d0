"""Several bot processes sharing one sandbox, PostgreSQL and Redis, as pods of a cluster."""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from pathlib import Path

from app.bot.runner import publish_commands
from sandbox import SandboxServer
from tests.bot.harness import bot_settings
from tests.conftest import Backend
from testsupport.processes import BotProcess
from testsupport.waiting import wait_for


async def publish(server: SandboxServer, db_url: str) -> None:
    """Register the bot's slash commands with the sandbox (once per sandbox)."""
    await publish_commands(bot_settings(server, db_url, None), server.bot_token)


def pod(
    name: str, server: SandboxServer, db_url: str, redis_url: str, workdir: Path, **env: str
) -> BotProcess:
    """`python -m app run` against `server` with this test's database and Redis, INFO logs, a
    short identify window and short leases, then `env`."""
    defaults = {"LOG_LEVEL": "INFO", "IDENTIFY_WINDOW_S": "0.1", "LEASE_TTL_S": "3"}
    return BotProcess.guildbot(
        name,
        server,
        workdir,
        keep=None,  # said, so that the type checker does not match the variables (str) to it
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        **{**defaults, **env},
    )


class Cluster:
    """Bot processes, one per pod index, each with its own ops port."""

    def __init__(
        self, server: SandboxServer, pg: Backend, redis_url: str, workdir: Path, **env: str
    ) -> None:
        self.server, self.pg, self.redis_url, self.workdir = server, pg, redis_url, workdir
        self.env = env
        self.pods: dict[int, BotProcess] = {}
        self.retired: list[BotProcess] = []

    def process(self, index: int) -> BotProcess:
        """A new process for pod `index` (not started)."""
        env = {"POD_INDEX": str(index), **self.env}
        return pod(f"pod-{index}", self.server, self.pg.db_url, self.redis_url, self.workdir, **env)

    async def start(self, *indexes: int) -> None:
        procs = [self.process(i) for i in indexes]
        for index, proc in zip(indexes, procs, strict=True):
            if index in self.pods:
                self.retired.append(self.pods[index])
            self.pods[index] = proc
        await asyncio.gather(*(p.start() for p in procs))

    async def wait_ready(self, within: float = 60) -> None:
        shards = int(self.env["SHARD_COUNT"])
        await self.server.driver.wait_for_shards(list(range(shards)), timeout=within)
        for index in self.pods:
            await wait_for(partial(self.http, index, "/readyz", ok_only=True), within=within)

    async def http(self, index: int, path: str, ok_only: bool = False) -> str | None:
        """The body of pod `index`'s ops endpoint `path` (None: no answer, or not 200 when
        `ok_only`)."""
        answer = await self.pods[index].http(path)
        if answer is None or (ok_only and answer[0] != 200):
            return None
        return answer[1]

    async def command(
        self, *args: str, env: dict[str, str] | None = None, within: float = 60
    ) -> tuple[int, str]:
        """`python -m app ARGS` with the pods' settings and `env`: (exit code, its output)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            *args,
            env={**self.process(0).env, **(env or {})},
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), within)
        return int(proc.returncode or 0), out.decode()

    async def close(self) -> None:
        """Kill what is left; the logs are printed (pytest shows them when a test failed)."""
        for proc in [*self.pods.values(), *self.retired]:
            await proc.kill()
        for index, proc in self.pods.items():
            print(f"--- pod {index} ---\n{proc.log()}")
