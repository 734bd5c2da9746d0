"""The console's pages: guilds, a guild's cases (search), a case, a member's timeline, export.

Read-only: nothing here changes a case. Every guild page starts with `auth.reader()` (404
unless the user may read the guild's cases now) and never shows a case about the reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jinja2
from aiohttp import web

from app.domain.authority import MANAGE
from app.domain.case_search import (
    CaseQuery,
    all_matches,
    parse_action,
    parse_day,
    parse_state,
    search_cases,
)
from app.domain.economy import Bank
from app.domain.errors import CaseNotFound, DomainError
from app.domain.export import case_row, to_csv, to_json
from app.domain.moderation import Moderation
from app.domain.types import CaseAction, CaseState, CaseView
from app.ops import metrics
from app.web.auth import Auth, Reader

PER_PAGE = 25
TIMELINE_MAX = 500
EXPORT_MAX = 50_000


def _int(value: str | None, what: str) -> int | None:
    if not value:
        return None
    if not value.strip().isdigit():
        raise DomainError(f"The {what} must be a number (an id).")
    return int(value)


def query_of(reader: Reader, form: Any) -> CaseQuery:
    """The search the form asks for, within the reader's guild and never about the reader."""
    return CaseQuery(
        reader.guild.guild_id,
        text=str(form.get("q", "")).strip(),
        target_id=_int(form.get("member"), "member"),
        moderator_id=_int(form.get("moderator"), "moderator"),
        action=parse_action(form.get("action")),
        state=parse_state(form.get("state")),
        since=parse_day(form.get("since"), "from"),
        until=parse_day(form.get("until"), "to", days=1),
        leave_out=reader.session.user_id,
    )


class Pages:
    """Handlers of the guild pages, rendering Jinja2 templates (autoescaped)."""

    def __init__(
        self, auth: Auth, templates: jinja2.Environment, moderation: Moderation, bank: Bank
    ) -> None:
        self.auth, self.templates = auth, templates
        self.moderation, self.bank = moderation, bank

    def render(self, name: str, status: int = 200, **data: Any) -> web.Response:
        """The template as an HTML response, timed for /metrics."""
        started = time.perf_counter()
        html = self.templates.get_template(name).render(**data)
        metrics.WEB_RENDER.labels(name.removesuffix(".html")).observe(time.perf_counter() - started)
        return web.Response(text=html, status=status, content_type="text/html")

    def render_for(self, reader: Reader, name: str, status: int = 200, **data: Any) -> web.Response:
        """A page of a guild's reader: the template gets the reader and their session."""
        return self.render(name, status, reader=reader, session=reader.session, **data)

    async def home(self, request: web.Request) -> web.Response:
        """The sign-in page, or the guilds the user may read."""
        session = await self.auth.session(request)
        if session is None:
            return self.render("signin.html", session=None)
        guilds = await self.auth.readable_guilds(session)
        return self.render("guilds.html", session=session, guilds=guilds)

    async def _reader(self, request: web.Request) -> Reader:
        raw = request.match_info["guild_id"]
        if not raw.isdigit() or not 0 < int(raw) < 2**63:
            raise web.HTTPNotFound(text="There is nothing here.")
        return await self.auth.reader(request, int(raw))

    async def cases(self, request: web.Request) -> web.Response:
        """A guild's cases, newest first, with the search form and keyset paging."""
        reader = await self._reader(request)
        data: dict[str, Any] = {
            "form": dict(request.query),
            "error": None,
            "next_before": None,
        }
        try:
            query = query_of(reader, request.query)
            before = _int(request.query.get("before"), "page")
            page = await search_cases(query, before=before, limit=PER_PAGE)
        except DomainError as error:
            data["error"] = str(error)
            return self.render_for(reader, "cases.html", 400, cases=[], **data, **_choices())
        names = await self._names(reader, page.cases)
        data["next_before"] = page.next_before
        following = {k: v for k, v in request.query.items() if k != "before"}
        return self.render_for(
            reader,
            "cases.html",
            cases=page.cases,
            names=names,
            following=following,
            **data,
            **_choices(),
        )

    async def case(self, request: web.Request) -> web.Response:
        """One case: its fields, Discord action, DM delivery, effect state and edit history."""
        reader = await self._reader(request)
        number = _int(request.match_info["number"], "case") or 0
        try:
            case = await self.moderation.get_case(reader.guild.guild_id, number)
        except (CaseNotFound, DomainError):
            raise web.HTTPNotFound(text="There is no such case.") from None
        if case.target_id == reader.session.user_id:
            raise web.HTTPNotFound(text="There is no such case.")
        edits = await self.moderation.edits(reader.guild.guild_id, number)
        return self.render_for(
            reader,
            "case.html",
            case=case,
            edits=edits,
            names=await self._names(reader, [case], [e.editor_id for e in edits if e.editor_id]),
        )

    async def member(self, request: web.Request) -> web.Response:
        """A member's timeline: their cases, and their ledger for readers with Manage Server."""
        reader = await self._reader(request)
        user_id = _int(request.match_info["user_id"], "member") or 0
        if user_id == reader.session.user_id:
            raise web.HTTPNotFound(text="There is nothing here.")
        query = CaseQuery(
            reader.guild.guild_id, target_id=user_id, leave_out=reader.session.user_id
        )
        economy = MANAGE in reader.actor.permissions
        try:
            page = await search_cases(query, limit=TIMELINE_MAX)
            ledger = await self.bank.ledger(reader.guild.guild_id, user_id) if economy else []
        except DomainError:  # not an id at all
            raise web.HTTPNotFound(text="There is nothing here.") from None
        cases = page.cases
        return self.render_for(
            reader,
            "member.html",
            user_id=user_id,
            cases=cases,
            economy=economy,
            ledger=ledger,
            names=await self._names(reader, cases),
        )

    async def export(self, request: web.Request) -> web.Response:
        """The current search as CSV (formula-safe) or JSON, at most EXPORT_MAX cases."""
        reader = await self._reader(request)
        kind = request.match_info["kind"]
        try:
            query = query_of(reader, request.query)
            cases = []
            async for case in all_matches(query):
                cases.append(case)
                if len(cases) >= EXPORT_MAX:
                    break
        except DomainError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        names = await self._names(reader, cases)
        rows = [case_row(c, names) for c in cases]
        body = to_csv(rows) if kind == "csv" else to_json(rows)
        name = f"cases-{reader.guild.guild_id}.{kind}"
        return web.Response(
            body=body,
            content_type="text/csv" if kind == "csv" else "application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def _names(
        self, reader: Reader, cases: list[CaseView], others: Iterable[int] = ()
    ) -> dict[int, str]:
        people = {c.target_id for c in cases} | {c.moderator_id for c in cases} | set(others)
        return await self.bank.display_names(reader.guild.guild_id, people) if people else {}


def _choices() -> dict[str, Any]:
    return {
        "actions": [a.value for a in CaseAction],
        "states": [s.value for s in CaseState],
    }
