"""Driving the bot through the sandbox as members do, and reading the database behind it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from tortoise import connections

from app.bot.client import GuildBot
from app.bot.runner import start_bot
from app.config import Settings
from app.db.models import Case, LedgerEntry, Member
from sandbox import SANDBOX_TOKEN, Driver, MessageView, SandboxServer, payloads
from sandbox.world import Channel, Guild
from testsupport import bots
from testsupport.waiting import wait_for

REPLY_TIMEOUT = 8.0


def bot_settings(
    server: SandboxServer, db_url: str, redis_url: str | None, **extra: Any
) -> Settings:
    """Settings for a bot against `server` (testsupport.bots.bot_settings) with this test's
    database and Redis, a short identify window and short leases."""
    values: dict[str, Any] = {"identify_window_s": 0.05, "lease_ttl_s": 3.0, **extra}
    return bots.bot_settings(server, db_url, redis_url=redis_url, **values)


async def start_test_bot(settings: Settings, **options: Any) -> GuildBot:
    """An in-process bot, commands synced, ready (every guild received)."""
    options.setdefault("guild_ready_timeout", 0.1)
    options.setdefault("drain_grace", 5.0)
    bot = await start_bot(settings, SANDBOX_TOKEN, sync=True, **options)
    await asyncio.wait_for(bot.wait_until_ready(), 15)
    return bot


def is_error(view: MessageView) -> bool:
    """An error reply by the bot's convention."""
    return view.content.startswith("❌")


class Harness:
    """One sandbox guild and the bot serving it (None when the bot runs in other processes)."""

    def __init__(self, server: SandboxServer, bot: Any, guild: Guild) -> None:
        self.server, self.bot, self.guild = server, bot, guild
        self.driver: Driver = server.driver

    def id_of(self, name: str) -> int:
        """The user id of a member name."""
        return self.driver.user(name).id

    async def slash(
        self,
        who: str,
        name: str,
        sub: str | None = None,
        /,
        *,
        at: str = "general",
        **options: Any,
    ) -> MessageView:
        """Run a slash command in channel `at` and return the bot's answer."""
        handle = await self.driver.slash(self.guild, at, who, name, sub=sub, **options)
        return await handle.wait_response(REPLY_TIMEOUT)

    async def click(self, message: MessageView, custom_id: str, who: str) -> MessageView:
        """`who` clicks a button of `message` and the bot's answer is returned.

        The click waits until the bot finished the command that sent the buttons: discord.py
        registers a message's buttons only once the reply's HTTP answer is back, and no
        member clicks within that millisecond.
        """
        assert await self.bot.inflight.wait_idle(REPLY_TIMEOUT), "the bot is still busy"
        handle = await self.driver.click(message.id, custom_id, who)
        return await handle.wait_response(REPLY_TIMEOUT)

    async def prefix(self, who: str, text: str, *, at: str = "general") -> MessageView:
        """Send `!text` as `who` in channel `at` and return the bot's reply."""
        sent = await self.driver.send_message(self.guild, at, who, "!" + text)
        return await self.driver.wait_reply(sent, REPLY_TIMEOUT)

    async def run(
        self,
        form: str,
        who: str,
        name: str,
        args: str = "",
        /,
        *,
        sub: str | None = None,
        at: str = "general",
        **options: Any,
    ) -> MessageView:
        """The same command as slash (`options`) or as prefix (`args` after the name)."""
        if form == "slash":
            return await self.slash(who, name, sub, at=at, **options)
        return await self.prefix(who, " ".join(w for w in (name, sub or "", args) if w), at=at)

    async def staff(
        self, form: str, who: str, name: str, args: str = "", /, **options: Any
    ) -> MessageView:
        """A staff-only command: its slash answer (ephemeral), or for prefix the DM holding the
        data, after checking that the channel got only the acknowledgement. A refusal is
        returned as it is."""
        if form == "slash":
            reply = await self.slash(who, name, **options)
            assert is_error(reply) or reply.ephemeral, reply.content
            return reply
        earlier = self.driver.dms(who)
        reply = await self.prefix(who, f"{name} {args}".strip())
        if is_error(reply):
            return reply
        assert reply.content.startswith("Sent you ") and not reply.embeds, reply.content
        assert not self.driver.world.messages[reply.id].attachments
        return await self.driver.wait_dm(who, after=earlier[-1] if earlier else None)

    async def against(
        self, form: str, who: str, name: str, target: str, /, **options: Any
    ) -> MessageView:
        """`name` aimed at member `target`: as slash (`member=target` and `options`) or as
        prefix (`!name @target` then the options' values in order)."""
        words = " ".join([self.mention(target), *map(str, options.values())])
        return await self.run(form, who, name, words, member=target, **options)

    def mention(self, name: str) -> str:
        """`<@id>` of a member name, as prefix commands take it."""
        return f"<@{self.id_of(name)}>"

    async def wait(self, probe: Any, what: str, within: float = REPLY_TIMEOUT) -> Any:
        """Wait for a sandbox condition (re-checked on every sandbox change)."""
        return await self.driver.wait_until(probe, within, what)

    def calls(self, method: str, route: str) -> int:
        """How many REST calls the bot made to `method route`."""
        return len(self.driver.rest_calls(method, route=route))


async def channel_changed(h: Harness, channel: Channel) -> None:
    """Tell the bot (CHANNEL_UPDATE) and wait until its cache has the new overwrites."""
    h.driver.core.emit("CHANNEL_UPDATE", payloads.channel(channel, h.driver.world), h.guild.id)

    async def seen() -> bool:
        cached = h.bot.get_channel(channel.id)
        return cached is not None and len(cached.overwrites) == len(channel.overwrites)

    await wait_for(seen)


async def coins(guild_id: int, user_id: int) -> int:
    """A member's balance in the database (0 without a profile)."""
    row = await Member.get_or_none(guild_id=guild_id, user_id=user_id)
    return row.coins if row else 0


async def cases(guild_id: int) -> list[Case]:
    """Every case of a guild, oldest first."""
    return await Case.filter(guild_id=guild_id).order_by("number")


async def snapshot() -> tuple[Any, ...]:
    """Everything a command could write, to compare before and after a refusal."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT (SELECT count(*) FROM members) AS members,"
        " (SELECT coalesce(sum(coins), 0) FROM members) AS coins,"
        " (SELECT coalesce(sum(xp), 0) FROM members) AS xp,"
        " (SELECT count(*) FROM ledger) AS ledger,"
        " (SELECT count(*) FROM cases) AS cases,"
        " (SELECT count(*) FROM case_edits) AS edits,"
        " (SELECT md5(coalesce(string_agg(concat_ws('|', guild_id, currency_name, daily_amount,"
        "  xp_min, xp_max, modlog_channel_id, levelup_channel_id, levelup_dm,"
        "  no_xp_channel_ids::text, last_case_number), ',' ORDER BY guild_id), ''))"
        "  FROM guild_settings) AS settings"
    )
    return tuple(rows[0].values())


async def ledger_count(**filters: Any) -> int:
    """Ledger rows matching `filters`."""
    return await LedgerEntry.filter(**filters).count()


class LogCapture(logging.Handler):
    """Collects records at ERROR and above from the bot and discord.py."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_errors() -> Iterator[LogCapture]:
    """Every ERROR logged by app.* or discord.* inside the block."""
    handler = LogCapture()
    loggers = [logging.getLogger("app"), logging.getLogger("discord")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
