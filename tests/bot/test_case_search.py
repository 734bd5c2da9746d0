"""modlog-search: staff only, never the reader's own cases, never in public."""

from __future__ import annotations

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
