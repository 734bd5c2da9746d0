"""Every start reaches READY or exits non-zero with one line; SIGTERM in any phase exits 0.

Each test runs `python -m app run` as a child process (two shards in one process, the embedded
SQLite database, no Redis unless said) against a sandbox tuned to produce the case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from app.bot.fatal import ExitCode
from sandbox import SandboxServer
from tests.bot.world import community_world
from testsupport.keys import delete_keys
from testsupport.processes import BotProcess

pytestmark = pytest.mark.slow

#: The bound on a failed start: one line and a non-zero exit within it.
FAIL_WITHIN = 30.0
#: How long SIGTERM may take, far inside Kubernetes' terminationGracePeriodSeconds (60 s).
GRACE = 15.0


def two_shard_sandbox(**settings: Any) -> SandboxServer:
    """Two guilds, one on each of two shards; `settings` tune the sandbox."""
    settings.setdefault("identify_window", 0.2)
    return SandboxServer(world=community_world([(0, 2), (1, 2)], members=2), **settings)


def bot(server: SandboxServer, workdir: Path, **env: str) -> BotProcess:
    """Two shards in one process, INFO logs, then `env`."""
    settings = {"SHARD_COUNT": "2", "LOG_LEVEL": "INFO", "IDENTIFY_WINDOW_S": "0.2", **env}
    return BotProcess.guildbot("bot", server, workdir, keep=None, **settings)


async def exit_code(proc: BotProcess, within: float) -> int:
    """Wait for the process to exit by itself; its exit code."""
    assert proc.proc is not None
    try:
        return await asyncio.wait_for(proc.proc.wait(), within)
    finally:
        await proc.kill()


async def test_a_rejected_identify_reaches_ready_after_the_window(tmp_path: Path) -> None:
    # Discord's window is 5 s; 6 s here outlasts the child's start-up (about 3 s).
    async with two_shard_sandbox(identify_window=6.0) as server:
        server.spend_identify(0)  # the previous process identified shard 0 a moment ago
        proc = bot(server, tmp_path, IDENTIFY_WINDOW_S="6")
        try:
            await proc.start()
            took = await proc.wait_ready(within=FAIL_WITHIN)
            records = [(r.shard_id, r.accepted) for r in server.driver.identifies()]
            assert records[0] == (0, False)  # rejected (op 9): within the window
            assert sorted(r for r in records if r[1]) == [(0, True), (1, True)]
            assert took >= 6.0
            assert proc.errors() == [], proc.log()
            assert proc.logged("shard 0: identify rejected (op 9)")
            assert await proc.stop(within=GRACE) == 0, proc.log()
        finally:
            await proc.kill()
    print(f"\nrejected identify: READY {took:.1f} s after start")


FATAL_CASES: list[tuple[str, dict[str, Any], dict[str, str], ExitCode, str]] = [
    (
        "4014",
        {"privileged_intents": 0},
        {},
        ExitCode.INTENTS_REFUSED,
        "Discord refused the intents (close 4014, disallowed intents)",
    ),
    ("bad-token", {"token": "the-right-one"}, {}, ExitCode.TOKEN_REFUSED, "refused the token"),
    (
        "4011",
        {"max_guilds_per_shard": 0},
        {},
        ExitCode.SHARDS_REFUSED,
        "Discord requires more shards (close 4011",
    ),
    (
        "4010",
        {"shard_count_multiple": 4},
        {},
        ExitCode.SHARDS_REFUSED,
        "of 2 (close 4010, invalid shard)",  # whichever shard Discord refused first
    ),
    (
        "budget",
        {"session_start_total": 10},
        {"IDENTIFY_MIN_REMAINING": "50"},
        ExitCode.IDENTIFY_BUDGET_EXHAUSTED,
        "identify budget exhausted: 10 session starts left today",
    ),
    (
        "rejected-again-and-again",
        {"identify_window": 600.0},
        {},
        ExitCode.IDENTIFY_REJECTED,
        "Discord rejected 5 identifies of shard 0 in a row (op 9)",
    ),
]


@pytest.mark.parametrize(
    ("settings", "env", "code", "line"),
    [case[1:] for case in FATAL_CASES],
    ids=[case[0] for case in FATAL_CASES],
)
async def test_a_start_discord_refuses_ends_in_one_line_and_its_exit_code(
    tmp_path: Path, settings: dict[str, Any], env: dict[str, str], code: ExitCode, line: str
) -> None:
    async with two_shard_sandbox(**settings) as server:
        server.spend_identify(0)  # the rejected case needs it; the others identify later
        if "token" in settings:
            env = {**env, "DISCORD_TOKEN": "a-wrong-token"}
        proc = bot(server, tmp_path, **env)
        started = time.monotonic()
        await proc.start()
        assert await exit_code(proc, FAIL_WITHIN) == code, proc.log()
        took = time.monotonic() - started
        errors = proc.errors()
        assert len(errors) == 1 and line in errors[0], proc.log()
        assert "Traceback" not in proc.log()
    print(f"\n{line[:40]}...: exit {int(code)} after {took:.1f} s")


async def held_elsewhere(redis_url: str) -> None:
    """Shard 0's lease is held by another process (and the cluster's epoch is old)."""
    client = redis.Redis.from_url(redis_url)
    try:
        await delete_keys(client, "identify:*", "shard:*", "cluster:*")
        await client.set("cluster:epoch", 0)
        await client.set("shard:0:lease", "another-pod|7", px=60_000)
    finally:
        await client.aclose()


Setup = Callable[[SandboxServer, Path, str], Awaitable[BotProcess]]


async def started(server: SandboxServer, workdir: Path, *lines: str, **env: str) -> BotProcess:
    """A bot process that logged each of `lines` (in order)."""
    proc = bot(server, workdir, **env)
    await proc.start()
    for line in lines:
        await proc.wait_log(line)
    return proc


async def lease(server: SandboxServer, workdir: Path, redis_url: str) -> BotProcess:
    await held_elsewhere(redis_url)
    env = {"REDIS_URL": redis_url, "SHARD_IDS": "[0, 1]", "LEASE_TTL_S": "3"}
    return await started(server, workdir, "shard 0 is held by another process", **env)


async def identify_queue(server: SandboxServer, workdir: Path, redis_url: str) -> BotProcess:
    # Shard 0 done, shard 1 queued behind it for a minute.
    lines = ("shard 1: waiting in the identify queue", "shard 0 ready")
    return await started(server, workdir, *lines, IDENTIFY_WINDOW_S="60")


async def identifying(server: SandboxServer, workdir: Path, redis_url: str) -> BotProcess:
    server.settings.ready_delay = 60.0
    return await started(server, workdir, "shard 0: identifying")


async def loading(server: SandboxServer, workdir: Path, redis_url: str) -> BotProcess:
    server.settings.guild_create_interval = 60.0
    return await started(server, workdir, "shard 0: loading guilds")


async def ready(server: SandboxServer, workdir: Path, redis_url: str) -> BotProcess:
    proc = await started(server, workdir)
    await proc.wait_ready(within=FAIL_WITHIN)
    return proc


async def logging_in(server: SandboxServer, workdir: Path, redis_url: str) -> BotProcess:
    return await started(server, workdir, "logging in using static token")


PHASES: dict[str, tuple[Setup, str]] = {
    "logging in": (logging_in, ""),
    "waiting for the lease": (lease, "shard 0 waiting for its lease"),
    "waiting in the identify queue": (identify_queue, "shard 1 waiting in the identify queue"),
    "identifying": (identifying, "shard 0 identifying"),
    "loading guilds": (loading, "shard 0 loading guilds"),
    "ready": (ready, "shard 0 ready, shard 1 ready"),
}


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with two_shard_sandbox() as server:
        yield server


@pytest.mark.parametrize("phase", list(PHASES))
async def test_sigterm_in_each_phase_of_start_up_exits_0_within_the_grace_period(
    sandbox: SandboxServer, tmp_path: Path, redis_server_url: str, phase: str
) -> None:
    reach, where = PHASES[phase]
    proc = await reach(sandbox, tmp_path, redis_server_url)
    try:
        asked = time.monotonic()
        assert await proc.stop(within=GRACE) == 0, proc.log()
        took = time.monotonic() - asked
        stopping = next(line for line in proc.lines if "SIGTERM: stopping" in line)
        assert where in stopping, stopping
        assert proc.errors() == [], proc.log()
    finally:
        await proc.kill()
    print(f"\nSIGTERM while {phase}: exit 0 after {took:.2f} s")
