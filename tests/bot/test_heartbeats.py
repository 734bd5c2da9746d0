"""A bot process against a sandbox beating fast: its log stays quiet and its latency metric
reads the heartbeat round trip.

On Discord a heartbeat goes every 41.25 s, so an hour would show a few dozen; here the sandbox
asks for one every 0.2 s, and the run waits for 15 of them (the same code paths, each taken
many times, in about 3 s). With an instant ACK (`heartbeat_ack_delay=0`) discord.py's own
keep-alive measured the latency from the previous heartbeat, a whole interval earlier: the bot
must still read the round trip, not the interval.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox import SandboxServer
from testsupport.processes import BotProcess

pytestmark = pytest.mark.slow
INTERVAL_MS = 200
BEATS = 15
NOISE = ("Can't keep up", "PyNaCl", "davey", "heartbeat blocked")
_LATENCY = re.compile(r'^guildbot_shard_latency_seconds\{shard="0"\} (\S+)$', re.MULTILINE)


@pytest.mark.parametrize("ack_delay", [0.03, 0.0])
async def test_fast_heartbeats_leave_the_log_quiet_and_the_latency_true(
    tmp_path: Path, ack_delay: float
) -> None:
    server = SandboxServer(
        heartbeat_interval=INTERVAL_MS, heartbeat_ack_delay=ack_delay, identify_window=0.05
    )
    async with server:
        bot = BotProcess.guildbot("bot", server, tmp_path)
        try:
            await bot.start()
            await bot.wait_ready()
            await server.driver.wait_until(
                lambda: server.gateway.heartbeats_acked >= BEATS or None, 30, f"{BEATS} ACKs"
            )
            answer = await bot.http("/metrics")
        finally:
            await bot.stop()
    log = bot.log()
    assert "has connected to Gateway" in log  # discord.py's gateway lines are in the log
    assert [word for word in NOISE if word in log] == [], log
    assert answer is not None and answer[0] == 200
    found = _LATENCY.search(answer[1])
    assert found is not None, answer[1]
    latency = float(found.group(1))
    # The round trip: at least the sandbox's delay, far below the interval (the old reading).
    assert ack_delay <= latency < INTERVAL_MS / 1000 / 2, latency
