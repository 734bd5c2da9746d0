"""Two bot processes share four shards of one sandbox, all driven from this process.

The sandbox itself runs as ``python -m sandbox serve`` and is driven with RemoteDriver, so
this also covers the serve CLI and the control API.
"""

from __future__ import annotations

import pytest
from sandbox_helpers import output_line, process

from sandbox import RemoteDriver
from sandbox.snowflake import shard_for

pytestmark = pytest.mark.slow
SHARDS = 4


async def test_four_shards_in_two_processes() -> None:
    serve_args = [
        "-m",
        "sandbox",
        "serve",
        "--guilds",
        "8",
        "--shard-count",
        str(SHARDS),
        "--channels",
        "4",
        "--roles",
        "5",
        "--members",
        "12",
        "--identify-window",
        "0.2",
        "--max-concurrency",
        str(SHARDS),
        "--interaction-deadline",
        "10",
    ]
    async with process(*serve_args) as serve:
        url = (await output_line(serve, r"sandbox listening on")).split()[-1]
        bots = [
            "tiny_bot.py",
            "--url",
            url,
            "--shard-count",
            str(SHARDS),
            "--identify-delay",
            "0.2",
            "--shard-ids",
        ]
        async with (
            process(*bots, "0", "1") as first,
            process(*bots, "2", "3") as second,
            RemoteDriver(url) as driver,
        ):
            owners: dict[int, int] = {}
            for proc, shards in ((first, (0, 1)), (second, (2, 3))):
                ready = await output_line(proc, r"^READY ")
                assert ready.split()[2:] == [str(s) for s in shards]
                owners |= {s: int(ready.split()[1]) for s in shards}
            holders = await driver.wait_for_shards(list(range(SHARDS)), timeout=10)
            assert all(len(sessions) == 1 for sessions in holders.values())
            assert await driver.duplicate_shard_holders() == []
            assert all(r.accepted for r in await driver.identifies())

            guilds = await driver.guilds(shard_count=SHARDS)
            assert sorted(g["shard"] for g in guilds) == [0, 0, 1, 1, 2, 2, 3, 3]
            for guild in guilds:
                detail = await driver.guild(guild["id"])
                author = next(m["id"] for m in detail["members"] if m["username"] != "GuildBot")
                channel = guild["text_channels"][0]["id"]
                sent = await driver.send_message(guild["id"], channel, author, "ping")
                reply = await driver.wait_reply(sent, timeout=10)
                shard = shard_for(guild["id"], SHARDS)
                assert reply.content == f"pong from pid {owners[shard]} shard {shard}"
                assert reply.reference_id == sent.id

            dm = await driver.send_dm(author, "ping")
            dm_reply = await driver.wait_reply(dm, timeout=10)
            assert dm_reply.content == f"pong from pid {owners[0]} shard 0"
            assert dm_reply.guild_id is None

            guild = next(g for g in guilds if g["shard"] == 3)
            detail = await driver.guild(guild["id"])
            author = next(m["id"] for m in detail["members"] if m["username"] != "GuildBot")
            channel = guild["text_channels"][0]["id"]
            handle = await driver.slash(guild["id"], channel, author, "roll", sides=6, count=3)
            response = await handle.wait_response(timeout=10)
            followup = await handle.wait_followup(0, timeout=10)
            assert response.content == f"rolling 3d6 in pid {owners[3]} shard 3"
            assert followup.content == "total: 18" and followup.is_followup
            calls = await driver.rest_calls("PUT", "/applications/{application_id}/commands")
            assert len(calls) == 2 and all(c.status == 200 for c in calls)
            for guild in guilds:
                channel = guild["text_channels"][0]["id"]
                sent_count = len(
                    await driver.rest_calls("POST", path=f"/channels/{channel}/messages")
                )
                assert sent_count == 1
