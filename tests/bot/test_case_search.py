"""modlog-search: staff only, never the reader's own cases, never in public."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.types import CaseAction
from tests.bot.harness import Harness, is_error


async def _cases(h: Harness) -> None:
    moderation = h.bot.services.moderation
    for target, reason in [
        ("m1", "spamming invite links"),
        ("m2", "Spam in #general"),
        ("mod", "spam: the reader's own case"),
        ("m1", "rude to staff"),
    ]:
        await moderation.open_case(
            h.guild.id, CaseAction.NOTE, h.id_of(target), h.id_of("admin"), reason
        )


@pytest.mark.parametrize("form", ["slash", "prefix"])
async def test_search_finds_words_and_leaves_out_the_readers_cases(h: Harness, form: str) -> None:
    await _cases(h)
    reply = await h.staff(form, "mod", "modlog-search", "spam", text="spam")
    shown = reply.text()
    assert "spamming invite links" in shown and "Spam in #general" in shown
    assert "reader's own" not in shown and "rude" not in shown
    narrowed = await h.staff(
        form, "mod", "modlog-search", f"spam {h.mention('m2')}", text="spam", member="m2"
    )
    assert "Spam in #general" in narrowed.text() and "invite" not in narrowed.text()


async def test_search_is_refused_without_moderate_members(h: Harness) -> None:
    await _cases(h)
    for form in ("slash", "prefix"):
        reply = await h.run(form, "m3", "modlog-search", "spam", text="spam")
        assert is_error(reply) and "spam" not in reply.text().lower()


async def test_search_filters_by_state_and_days(h: Harness) -> None:
    await _cases(h)
    moderation = h.bot.services.moderation
    await moderation.pardon(h.guild.id, 2, h.id_of("admin"), "a misunderstanding")
    today = datetime.now(UTC).date()
    pardoned = await h.staff("slash", "mod", "modlog-search", text="spam", state="pardoned")
    assert "Spam in #general" in pardoned.text() and "invite" not in pardoned.text()
    active = await h.staff("slash", "mod", "modlog-search", text="spam", state="Active")
    assert "invite" in active.text() and "#general" not in active.text()
    within = await h.staff("slash", "mod", "modlog-search", since=str(today), until=str(today))
    assert "invite" in within.text() and "rude" in within.text()  # the "to" day is included
    before = str(today - timedelta(days=1))
    assert "No cases." in (await h.staff("slash", "mod", "modlog-search", until=before)).text()


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"state": "activ"}, "use one of active, expired, pardoned"),
        ({"since": "2026-13-01"}, "YYYY-MM-DD"),
        ({"until": "yesterday"}, "YYYY-MM-DD"),
    ],
)
async def test_a_mistyped_filter_is_refused_not_dropped(
    h: Harness, options: dict[str, str], hint: str
) -> None:
    await _cases(h)
    reply = await h.staff("slash", "mod", "modlog-search", text="spam", **options)
    assert is_error(reply) and hint in reply.content and "invite" not in reply.text()


async def test_prefix_search_takes_the_filters_in_order(h: Harness) -> None:
    await _cases(h)
    today = datetime.now(UTC).date()
    words = f"spam {h.mention('m1')} note {h.mention('admin')} active {today} {today}"
    found = await h.staff("prefix", "mod", "modlog-search", words)
    assert "invite" in found.text() and "#general" not in found.text()
    refused = await h.staff("prefix", "mod", "modlog-search", f"{words[:-10]} 01-12-2026")
    assert is_error(refused) and "YYYY-MM-DD" in refused.content
