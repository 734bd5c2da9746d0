"""Staff data never reaches a channel that @everyone can read.

Every staff command is typed in its prefix form in #general (open to everyone): the channel
gets only acknowledgements, the moderator's DMs get the data, and a moderator whose DMs are
closed is refused without the data.
"""

from __future__ import annotations

from typing import Any

from app.domain.types import CaseAction
from sandbox import MessageView
from sandbox.permissions import P, has
from tests.bot.harness import Harness, is_error

SECRET = "SECRET-staff-only"


def members_can_read(h: Harness, channel: str) -> bool:
    """Whether a plain member (m1: the Member role only) may view `channel`."""
    guild = h.driver.guild(h.guild)
    member = h.driver.member(h.guild, "m1")
    return has(guild, member, int(P.VIEW_CHANNEL), h.driver.channel(h.guild, channel))


def public_text(messages: list[MessageView]) -> str:
    """Everything the bot posted, as text (contents and embeds)."""
    return "\n".join(m.text() for m in messages)


def has_files(h: Harness, messages: list[MessageView]) -> bool:
    return any(h.driver.world.messages[m.id].attachments for m in messages)


async def test_no_staff_text_reaches_a_public_channel(h: Harness) -> None:
    assert members_can_read(h, "general") and not members_can_read(h, "modlog")
    gid = h.guild.id
    await h.bot.services.bank.grant(gid, h.id_of("admin"), h.id_of("m13"), 100)
    target = h.mention("m13")
    # a note is written where only staff read (a prefix note is refused in #general)
    note = await h.prefix("mod", f"note {target} {SECRET} note", at="modlog")
    assert not is_error(note), note.content
    acting: list[tuple[str, str]] = [
        ("mod", f"warn {target} {SECRET} warning"),
        ("mod", f"timeout {target} 10m {SECRET} timeout"),
        ("mod", f"untimeout {target} {SECRET} lifted"),
        ("admin", f"fine {target} 5 {SECRET} fine"),
        ("mod", f"reason 2 {SECRET} corrected"),
        ("mod", f"pardon 2 {SECRET} pardoned"),
    ]
    first = len(h.driver.bot_messages(h.guild, "general"))
    for who, text in acting:
        reply = await h.prefix(who, text)
        assert not is_error(reply), (text, reply.content)
    data: dict[str, Any] = {}
    for text, what in [
        (f"modlog {target}", "the cases"),
        (f"modlog {target} notes", "the cases"),
        ("case 1", "case #1"),
        ("case 2", "case #2"),
        ("modlog-export", "the export"),
        ("modlog-export all", "the export"),
        (f"modlog-export {target}", "the export"),
    ]:
        dm = await h.staff("prefix", "mod", *text.split(" ", 1))
        data[text] = dm
        ack = h.driver.bot_messages(h.guild, "general")[-1]
        assert ack.content == f"Sent you {what} by DM.", (text, ack.content)
    posted = h.driver.bot_messages(h.guild, "general")[first:]
    assert posted and SECRET not in public_text(posted)
    assert not any(m.embeds for m in posted) and not has_files(h, posted)
    assert SECRET in data[f"modlog {target} notes"].text()
    assert SECRET in data["case 1"].text() and SECRET in data["case 2"].text()
    export = h.driver.world.messages[data["modlog-export"].id]
    assert {a.filename for a in export.attachments} == {f"cases-{gid}.csv", f"cases-{gid}.json"}
    assert SECRET.encode() in export.attachments[0].data


async def test_closed_dms_refuse_without_the_data(h: Harness) -> None:
    await h.bot.services.moderation.open_case(
        h.guild.id, CaseAction.NOTE, h.id_of("m14"), h.id_of("mod"), f"{SECRET} note"
    )
    first, dms = len(h.driver.bot_messages(h.guild, "general")), len(h.driver.dms("mod2"))
    h.driver.set_dms_closed("mod2")
    try:
        for text in ["case 1", f"modlog {h.mention('m14')}", "modlog-export"]:
            reply = await h.prefix("mod2", text)
            assert is_error(reply) and "open your direct messages" in reply.content, text
    finally:
        h.driver.set_dms_closed("mod2", False)
    posted = h.driver.bot_messages(h.guild, "general")[first:]
    assert len(posted) == 3 and SECRET not in public_text(posted) and not has_files(h, posted)
    assert len(h.driver.dms("mod2")) == dms


async def test_slash_forms_stay_ephemeral(h: Harness) -> None:
    await h.bot.services.moderation.open_case(
        h.guild.id, CaseAction.NOTE, h.id_of("m15"), h.id_of("mod"), f"{SECRET} note"
    )
    dms = len(h.driver.dms("mod"))
    forms: list[tuple[str, dict[str, object]]] = [
        ("case", {"number": 1}),
        ("modlog", {"member": "m15"}),
        ("modlog-export", {}),
    ]
    for name, options in forms:
        reply = await h.staff("slash", "mod", name, **options)
        assert reply.ephemeral and not is_error(reply), name
    assert len(h.driver.dms("mod")) == dms
