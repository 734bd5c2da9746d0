"""No effect without an answer (app/ops/deadline.py): a command that reaches the bot too late is
not run, and one whose database work outlives its deadline writes nothing and says so."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from app.bot.client import GuildBot
from app.bot.errors import TRY_AGAIN
from app.db.migrate import run_migrations
from app.ops.deadline import FIRST_RESPONSE_S
from app.ops.metrics import REGISTRY
from sandbox import MessageView, SandboxServer
from sandbox.driver import InteractionHandle
from sandbox.interactions import build_command
from tests.bot.harness import Harness, bot_settings, coins, is_error, ledger_count, start_test_bot
from tests.bot.world import community_world
from testsupport.databases import connect, create_database
from testsupport.servers import PrivatePostgres
from testsupport.waiting import wait_for

FORMS = ["slash", "prefix"]


def expired(command: str, form: str) -> float:
    """guildbot_commands_expired_total for one command and form."""
    labels = {"command": command, "form": form}
    return REGISTRY.get_sample_value("guildbot_commands_expired_total", labels) or 0.0


async def send_late(h: Harness, form: str, sent_ago: float, amount: int) -> InteractionHandle | int:
    """`transfer` from m1 to m2, delivered `sent_ago` seconds after it was made: the
    interaction's handle, or the message's id."""
    if form == "slash":
        return await h.driver.slash(
            h.guild, "general", "m1", "transfer", member="m2", amount=amount, sent_ago=sent_ago
        )
    text = f"!transfer {h.mention('m2')} {amount}"
    return (await h.driver.send_message(h.guild, "general", "m1", text, sent_ago=sent_ago)).id


async def answer(h: Harness, late: InteractionHandle | int, since: int) -> MessageView:
    """The bot's answer to a late request: the interaction's response, or the first bot message
    in #general made after `since` (an id taken before sending: the late message itself is
    older than the bot's earlier replies)."""
    if isinstance(late, InteractionHandle):
        return await late.wait_response(8)

    def probe() -> MessageView | None:
        found = [m for m in h.driver.bot_messages(h.guild, "general") if m.id > since]
        return next((m for m in found if m.interaction_id is None), None)

    return await h.wait(probe, "the bot's answer to the late message")


@pytest.mark.parametrize("form", FORMS)
async def test_a_command_older_than_its_deadline_is_not_run(
    h: Harness, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.bot.deadlines")
    await h.bot.services.bank.grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    before = expired("transfer", form)
    since = h.driver.world.ids.next()
    late = await send_late(h, form, sent_ago=60, amount=7)
    request = late.id if isinstance(late, InteractionHandle) else late

    def logged() -> str | None:
        said = (r.getMessage() for r in caplog.records)
        return next((m for m in said if f"(request {request})" in m), None)

    line: str = await wait_for(logged, within=8)  # a log line: polled, the sandbox sees none
    assert line.startswith(f"not running {form} command transfer (request {request})")
    age = re.search(r"reached the bot ([\d.]+) s after", line)
    assert age is not None and 59.5 < float(age.group(1)) < 70, line
    assert expired("transfer", form) == before + 1
    if isinstance(late, InteractionHandle):
        assert late.record.response_type is None  # not even acknowledged
    else:
        told = await answer(h, late, since)
        assert is_error(told) and "too late to act on it, so I did nothing" in told.content
    # The next, timely command is served; the late one moved nothing.
    sent = await h.run(form, "m1", "transfer", f"{h.mention('m2')} 5", member="m2", amount=5)
    assert sent.content.startswith("Sent 5 coins")
    assert await coins(h.guild.id, h.id_of("m2")) == 5


@pytest.mark.parametrize(("form", "sent_ago"), [("slash", 2.0), ("prefix", 20.0)])
async def test_a_late_command_within_its_window_is_run(
    h: Harness, form: str, sent_ago: float
) -> None:
    await h.bot.services.bank.grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    since = h.driver.world.ids.next()
    late = await send_late(h, form, sent_ago=sent_ago, amount=9)
    reply = await answer(h, late, since)
    assert reply.content.startswith("Sent 9 coins"), reply.content
    assert await ledger_count(kind="transfer_out") == 1


async def test_a_command_whose_deferral_discord_refuses_as_too_late_does_nothing(
    h: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the skew margin the bot starts it, but its deferral reaches Discord past the 3 s
    (10062): nobody would see an answer, so nothing is written."""
    caplog.set_level(logging.INFO, logger="app.bot.errors")
    monkeypatch.setattr(h.server.core.settings, "interaction_deadline", FIRST_RESPONSE_S)
    await h.bot.services.bank.grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    late = await send_late(h, "slash", sent_ago=FIRST_RESPONSE_S + 0.5, amount=8)
    assert isinstance(late, InteractionHandle)

    def gave_up() -> bool | None:
        said = (r.getMessage() for r in caplog.records)
        return (
            any(f"interaction {late.id} was answered already or expired" in m for m in said) or None
        )

    await wait_for(gave_up, within=8)
    assert late.record.response_type is None
    assert await ledger_count(kind="transfer_out") == 0


# -- a late redelivery of a command an earlier delivery left waiting ------------------------

LEFT_AT = 2.7  # the interaction's age when the earlier delivery deferred it (within its 3 s)


async def deferred_elsewhere(h: Harness, *, answered: bool) -> InteractionHandle:
    """`transfer 6` from m1 to m2, made LEFT_AT s ago and deferred by an earlier delivery (the
    shard's previous owner, which then stopped; `answered`: after sending its reply). This bot
    has not seen it; it is old enough now that its 3 s window (plus the skew) has passed."""
    guild, driver = h.guild, h.driver
    member = driver.member(guild, "m1")
    options = {"member": driver.member(guild, "m2"), "amount": 6}
    record = build_command(
        driver.core,
        guild,
        driver.channel(guild, "general"),
        member.user,
        "transfer",
        None,
        options,
        LEFT_AT,
    )
    driver.core.interactions.add(record)
    base = f"{h.server.rest_base}/interactions/{record.id}/{record.token}/callback"
    async with aiohttp.ClientSession() as http:
        async with http.post(base, json={"type": 5}) as deferred:
            assert deferred.status == 204, await deferred.text()
        if answered:
            hook = f"{h.server.rest_base}/webhooks/{driver.world.application_id}/{record.token}"
            async with http.post(hook, json={"content": "Sent 6 coins (the earlier owner)"}) as r:
                assert r.status in (200, 204), await r.text()
    made = time.time() - LEFT_AT
    window = FIRST_RESPONSE_S + h.bot.settings.clock_skew_s
    await wait_for(lambda: time.time() - made > window + 0.2 or None, within=window + 2)
    return InteractionHandle(driver, record)


async def test_a_late_redelivery_of_a_command_left_waiting_is_run_and_answered(
    h: Harness,
) -> None:
    await h.bot.services.bank.grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    handle = await deferred_elsewhere(h, answered=False)
    h.driver.redeliver(handle)  # the RESUME by this bot replays it
    reply = await handle.wait_followup(0, 8)  # it fills the deferred "thinking..." reply
    assert reply.content.startswith("Sent 6 coins"), reply.content
    assert await coins(h.guild.id, h.id_of("m2")) == 6
    assert await ledger_count(kind="transfer_out") == 1


async def test_a_late_redelivery_of_an_answered_command_is_not_run(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.bot.deadlines")
    await h.bot.services.bank.grant(h.guild.id, h.id_of("admin"), h.id_of("m1"), 100)
    handle = await deferred_elsewhere(h, answered=True)
    h.driver.redeliver(handle)

    def refused() -> bool | None:
        return any(f"(request {handle.id})" in r.getMessage() for r in caplog.records) or None

    await wait_for(refused, within=8)
    assert len(handle.record.followups) == 1  # the earlier owner's answer, and nothing more
    assert await ledger_count(kind="transfer_out") == 0


# -- a PostgreSQL outage during a stream of transfers ------------------------------------------

TRANSFERS = 40
EVERY = 0.25  # seconds between two transfers: the stream lasts 10 s
PAUSE_AT, PAUSE_FOR = 2.5, 5.0
WORK_TIMEOUT = 2.0  # COMMAND_TIMEOUT_S of this bot
SENDERS = [f"m{i}" for i in range(1, 11)]


@pytest.fixture
async def private_pg() -> AsyncIterator[tuple[PrivatePostgres, str]]:
    """A PostgreSQL server of this test's own (it will be paused), and a migrated database."""
    async with PrivatePostgres() as server:
        url = await create_database(server.url, "outage")
        await run_migrations(url)
        yield server, url


@pytest.mark.slow
async def test_a_postgresql_pause_gives_every_transfer_one_answer_and_no_late_effect(
    private_pg: tuple[PrivatePostgres, str],
) -> None:
    postgres, url = private_pg
    server = SandboxServer(world=community_world(), identify_window=0.01, interaction_deadline=10)
    await server.start()
    settings = bot_settings(server, url, None, command_timeout_s=WORK_TIMEOUT)
    bot = await start_test_bot(settings)
    guild = next(iter(server.world.guilds.values()))
    try:
        database = bot.services.database
        assert database is not None
        with database.context:  # the bot's own database, not the test session's
            for name in SENDERS:
                await bot.services.bank.grant(guild.id, 1, server.driver.user(name).id, 1_000)
        handles: list[InteractionHandle] = []
        started = time.monotonic()

        async def stream() -> None:
            for i in range(TRANSFERS):
                sender, recipient = SENDERS[i % 10], SENDERS[(i + 1) % 10]
                handles.append(
                    await server.driver.slash(
                        guild, "general", sender, "transfer", member=recipient, amount=1
                    )
                )
                await asyncio.sleep(EVERY)  # the offered rate of the stream

        async def outage() -> None:
            await asyncio.sleep(PAUSE_AT)  # into the stream
            await postgres.pause()
            try:
                await asyncio.sleep(PAUSE_FOR)  # the outage itself
            finally:
                await postgres.resume()

        await asyncio.gather(stream(), outage())
        replies = [await h.wait_response(timeout=30) for h in handles]
        assert all(len(h.history) == 1 for h in handles), "a transfer answered twice"
        outcomes = list(zip(handles, replies, strict=True))
        answered = {h.id for h, r in outcomes if r.content.startswith("Sent")}
        again = {h.id for h, r in outcomes if is_error(r) and TRY_AGAIN in r.content}
        assert answered | again == {h.id for h in handles}, [r.content for r in replies]
        assert again, "no transfer ran into the outage"

        async with connect(url) as conn:
            # Attempts abandoned during the outage roll back once the server answers again:
            # wait until none is left, in the database or waiting for the bot's pool.
            await wait_for(lambda: _no_open_transaction(conn), within=30)
            await wait_for(lambda: _pool_idle(bot), within=30)
            keys = await conn.fetch(
                "SELECT idempotency_key FROM ledger WHERE kind = 'transfer_out'"
            )
            total = await conn.fetchval("SELECT sum(coins) FROM members")
        ledger = {int(r[0].split(":")[1]) for r in keys}
        assert ledger == answered  # exactly the answered transfers, none of the others
        assert total == 1_000 * len(SENDERS)
        elapsed = time.monotonic() - started
        print(
            f"\n{TRANSFERS} transfers over {elapsed:.1f} s, PostgreSQL paused {PAUSE_FOR:.0f} s:"
            f" {len(answered)} answered with the result, {len(again)} told to try again,"
            f" {len(ledger)} in the ledger"
        )
    finally:
        await bot.close()
        await server.stop()


def _pool_idle(bot: GuildBot) -> bool:
    """Every connection of the bot's pool is back and idle."""
    stats = bot.services.pool_stats()
    return stats is not None and stats.idle == stats.size


async def _no_open_transaction(conn: asyncpg.Connection) -> bool:
    """No other session of the database is inside a transaction."""
    open_ = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )
    return open_ == 0
