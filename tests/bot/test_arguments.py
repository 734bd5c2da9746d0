"""Every documented argument form, and every refusal, end to end (docs/commands.md).

A typo never widens a punishment or changes a setting: each refused form below is checked to
have written nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from app.db.models import Case
from app.domain.types import CaseAction
from sandbox import MessageView
from tests.bot.harness import Harness, cases, coins, is_error, snapshot

BAN_ROUTE = "/guilds/{guild_id}/bans/{user_id}"


def length(case: Case) -> timedelta:
    assert case.expires_at is not None
    return case.expires_at - case.created_at


def close_to(delta: timedelta, expected: timedelta) -> bool:
    return abs(delta - expected) < timedelta(seconds=2)


async def unban_all(h: Harness) -> None:
    guild = h.driver.guild(h.guild)
    for user_id in list(guild.bans):
        guild.bans.pop(user_id)
        name = h.driver.user(user_id).username
        await h.driver.add_member(h.guild, name, roles=["Member"])


@contextmanager
def nickname(h: Harness, who: str, nick: str) -> Iterator[None]:
    """`who` shows as `nick` in the server for the block (the bot reads it on each lookup)."""
    member = h.driver.member(h.guild, who)
    member.nick = nick
    try:
        yield
    finally:
        member.nick = None


async def refused(h: Harness, who: str, text: str, expected: str) -> MessageView:
    """`!text` is refused with `expected` in the reply, and nothing is written."""
    before = await snapshot()
    reply = await h.prefix(who, text)
    assert is_error(reply) and expected in reply.content, (text, reply.content)
    assert await snapshot() == before, text
    return reply


# -- durations -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "expected", "reason"),
    [
        ("1h 30m spamming", timedelta(minutes=90), "spamming"),
        ("1h30m spamming", timedelta(minutes=90), "spamming"),
        ("1 day 12 hours being rude", timedelta(hours=36), "being rude"),
        ("10 min of spam", timedelta(minutes=10), "of spam"),
        ("2h cool off", timedelta(hours=2), "cool off"),
    ],
)
async def test_prefix_timeout_reads_the_whole_duration(
    h: Harness, words: str, expected: timedelta, reason: str
) -> None:
    reply = await h.prefix("mod", f"timeout {h.mention('m1')} {words}")
    assert reply.content.startswith("Case #1: Timeout"), reply.content
    (case,) = await cases(h.guild.id)
    assert close_to(length(case), expected) and case.reason == reason
    await h.prefix("mod", f"untimeout {h.mention('m1')}")


async def test_slash_timeout_takes_a_multi_word_duration(h: Harness) -> None:
    reply = await h.slash("mod", "timeout", member="m2", duration="1h 30m", reason="spamming")
    assert reply.content.startswith(f"Case #1: Timeout (1h 30m) for {h.mention('m2')}.")
    assert close_to(length((await cases(h.guild.id))[0]), timedelta(minutes=90))
    bad = await h.slash("mod", "timeout", member="m2", duration="1h 30", reason="x")
    assert is_error(bad) and "not a duration" in bad.content
    await h.slash("mod", "untimeout", member="m2")


# -- ban ---------------------------------------------------------------------------------------
def deleted_seconds(h: Harness) -> str | None:
    """delete_message_seconds of the bot's last ban call."""
    return h.driver.rest_calls("PUT", route=BAN_ROUTE)[-1].query.get("delete_message_seconds")


@pytest.mark.parametrize(
    ("words", "action", "duration", "delete_days", "reason"),
    [
        ("3 days raid", CaseAction.TEMPBAN, timedelta(days=3), 0, "raid"),
        ("1w2d raid", CaseAction.TEMPBAN, timedelta(days=9), 0, "raid"),
        ("2h delete:1 raiding again", CaseAction.TEMPBAN, timedelta(hours=2), 1, "raiding again"),
        ("2h --delete 2 raid", CaseAction.TEMPBAN, timedelta(hours=2), 2, "raid"),
        ("delete:7 spam bot", CaseAction.BAN, None, 7, "spam bot"),
        ("raid 3 times", CaseAction.BAN, None, 0, "raid 3 times"),
    ],
)
async def test_prefix_ban_grammar(
    h: Harness,
    words: str,
    action: CaseAction,
    duration: timedelta | None,
    delete_days: int,
    reason: str,
) -> None:
    reply = await h.prefix("mod", f"ban {h.mention('m4')} {words}")
    assert reply.content.startswith("Case #1: "), reply.content
    (case,) = await cases(h.guild.id)
    assert (case.action, case.reason) == (action, reason)
    if duration is None:
        assert case.expires_at is None
    else:
        assert close_to(length(case), duration)
    assert deleted_seconds(h) in ({None, "0"} if delete_days == 0 else {str(delete_days * 86400)})
    await unban_all(h)


@pytest.mark.parametrize(
    ("command", "words", "expected"),
    [
        ("timeout", "1h 30 spamming", "`30` after `1h` is not part of a duration"),
        ("timeout", "1h 2h spamming", "`2h` after `1h` is not part of a duration"),
        ("timeout", "spamming", "`spamming` is not a duration"),
        ("timeout", "5q spamming", "`q` is not a time unit"),
        ("timeout", "90 spamming", "`90` is not a duration"),
        ("timeout", "10m", "Missing `reason`"),
        ("ban", "7d 1 raid", "`1` after `7d` is not part of a duration"),
        ("ban", "3 raid", "write delete:3 after it"),
        ("ban", "3d2 raid", "is not a duration"),
        ("ban", "delete:9 raid", "delete takes 0 to 7 days"),
        ("ban", "--delete raid", "Write the days after --delete"),
        ("ban", "delete:1 7d raid", "put the duration before delete"),
        ("ban", "raid delete:1", "Put `delete:N` before the reason"),
    ],
)
async def test_prefix_refuses_what_it_cannot_read_whole(
    h: Harness, command: str, words: str, expected: str
) -> None:
    await refused(h, "mod", f"{command} {h.mention('m5')} {words}", expected)
    assert not h.driver.member(h.guild, "m5").timed_out()
    assert h.id_of("m5") not in h.driver.guild(h.guild).bans


async def test_slash_ban_takes_duration_and_delete_days(h: Harness) -> None:
    reply = await h.slash("mod", "ban", user="m6", duration="3 days", delete_days=2, reason="raid")
    assert reply.content.startswith(f"Case #1: Temporary ban (3d) for {h.mention('m6')}.")
    assert deleted_seconds(h) == str(2 * 86400)
    await unban_all(h)


async def test_unban_by_id_of_someone_not_in_the_server(h: Harness) -> None:
    outsider = await h.driver.add_member(h.guild, "departed")
    await h.driver.remove_member(h.guild, outsider)
    banned = await h.prefix("mod", f"ban {outsider.id} evasion")
    assert banned.content.startswith(f"Case #1: Ban for <@{outsider.id}>.")
    lifted = await h.prefix("mod", f"unban {outsider.id} appeal")
    assert lifted.content.startswith(f"Case #2: Unban for <@{outsider.id}>.")
    assert outsider.id not in h.driver.guild(h.guild).bans
    await refused(h, "mod", "unban 999999999999999999 x", "could not find that user")


# -- members by name -------------------------------------------------------------------------
async def test_a_nickname_never_stands_for_a_member(h: Harness) -> None:
    gid = h.guild.id
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m7"), 100)
    with nickname(h, "helper", "bob"):
        reply = await refused(h, "m7", "transfer bob 25", "No member has the username `bob`")
        assert "`helper` (shown as “bob”)" in reply.content
        await refused(h, "mod", "warn bob spam", "No member has the username `bob`")
    with nickname(h, "helper", "m8"):
        paid = await h.prefix("m7", "transfer m8 25")
        assert paid.content.startswith(f"Sent 25 coins to {h.mention('m8')}."), paid.content
    assert (await coins(gid, h.id_of("m8")), await coins(gid, h.id_of("helper"))) == (25, 0)


@pytest.mark.parametrize("written", ["m9", "M9", "@m9"])
async def test_a_member_by_exact_username(h: Harness, written: str) -> None:
    reply = await h.prefix("admin", f"give {written} 5")
    assert reply.content.startswith(f"Gave 5 coins to {h.mention('m9')}."), reply.content


async def test_names_that_fit_nobody_are_refused_with_candidates(h: Harness) -> None:
    reply = await refused(h, "admin", "give m 5", "No member has the username `m`")
    assert "Did you mean `m" in reply.content and reply.content.count("`m") <= 6
    await refused(h, "admin", "give nobody-here 5", "No member has the username `nobody-here`")
    await refused(h, "admin", "give 999999999999999999 5", "could not find that member")


async def test_profile_and_rank_refuse_an_unknown_member(h: Harness) -> None:
    await refused(h, "m10", "profile 999999999999999999", "could not find that member")
    await refused(h, "m10", "rank somebody", "No member has the username `somebody`")
    shown = await h.prefix("m10", "profile m11")
    assert shown.embeds[0]["title"] == "Profile — m11"


async def test_extra_words_are_refused(h: Harness) -> None:
    await refused(h, "m10", f"balance {h.mention('m11')}", f"do with `{h.mention('m11')}`")
    await refused(h, "m10", "daily please", "do with `please`")
    await refused(h, "mod", "case 1 2", "do with `2`")
    await refused(h, "admin", "config bogus", "do with `bogus`")
    shown = await h.prefix("admin", "config show")
    assert shown.embeds[0]["title"].startswith("Settings — ")


# -- modlog filters ----------------------------------------------------------------------------
async def test_modlog_filters_by_action_and_moderator(h: Harness) -> None:
    gid, target, cases_ = h.guild.id, h.id_of("m12"), h.bot.services.moderation
    await cases_.open_case(gid, CaseAction.WARN, target, h.id_of("mod"), "first")
    await cases_.open_case(gid, CaseAction.BAN, target, h.id_of("mod2"), "second")
    await cases_.open_case(gid, CaseAction.TEMPBAN, target, h.id_of("mod"), "third", timedelta(1))
    filters = [("bans", "`#2`"), ("ban", "`#2`"), ("warnings", "`#1`"), ("tempban", "`#3`")]
    for word, shown in filters:
        dm = await h.staff("prefix", "mod", "modlog", f"{h.mention('m12')} {word}")
        text = dm.embeds[0]["description"]
        assert text.count("`#") == 1 and text.startswith(shown), (word, text)
    by_mod2 = await h.staff("prefix", "mod", "modlog", f"{h.mention('m12')} {h.mention('mod2')}")
    assert by_mod2.embeds[0]["description"].startswith("`#2`")
    both = await h.staff("prefix", "mod", "modlog", f"{h.mention('m12')} warn {h.mention('mod')}")
    assert both.embeds[0]["description"].count("`#") == 1
    slash = await h.staff("slash", "mod", "modlog", member="m12", action="tempban")
    assert slash.embeds[0]["description"].startswith("`#3`")
    await refused(h, "mod", f"modlog {h.mention('m12')} bnas", "`bnas` is not a kind of case")
    await refused(h, "mod", f"modlog {h.mention('m12')} ban mod9", "No member has the username")


# -- settings ------------------------------------------------------------------------------------
async def test_config_modlog_never_clears_by_mistake(h: Harness) -> None:
    configs, gid = h.bot.services.guilds, h.guild.id
    modlog = h.driver.channel(h.guild, "modlog")
    await configs.set_modlog(gid, modlog.id)
    await refused(h, "admin", "config modlog #nowhere", "could not find that channel")
    await refused(h, "admin", "config modlog 123456789012345678", "could not find that channel")
    await refused(h, "admin", "config modlog", "Name a channel, or write `off`")
    await refused(h, "admin", "config modlog #general", "readable by everyone")
    assert (await configs.get(gid)).modlog_channel_id == modlog.id
    by_name = await h.prefix("admin", "config modlog modlog")
    assert by_name.content == f"Saved: cases go to <#{modlog.id}>."
    off = await h.prefix("admin", "config modlog off")
    assert off.content == "Saved: cases are no longer posted."
    assert (await configs.get(gid)).modlog_channel_id is None
    public = await h.slash("admin", "config", "modlog", channel="general")
    assert is_error(public) and "readable by everyone" in public.content


async def test_config_channel_arguments_must_resolve(h: Harness) -> None:
    await refused(h, "admin", "config noxp add #nowhere", "could not find that channel")
    await refused(h, "admin", "config levelup channel nowhere", "could not find that channel")
    await refused(h, "admin", "config levelup here #levels", "goes with `channel` only")
    await refused(h, "admin", "config xp 10", "Missing `maximum`")
