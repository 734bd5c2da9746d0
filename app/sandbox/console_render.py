"""Drawing replies in the terminal with rich: embeds as panels, tags for ephemeral and more.

A reply counts as an error when its content or first embed title starts with ❌, ⛔, 🚫, ✖,
"Error" or "error:", or when an embed's colour is one of Discord's reds (0xE74C3C, 0xED4245,
0xDA373C, 0x992D22, 0xFF0000). The bot should use one of those for its error replies.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from app.sandbox.records import MessageView
from app.sandbox.world import World

ERROR_COLOURS = {0xE74C3C, 0xED4245, 0xDA373C, 0x992D22, 0xFF0000}
_ERROR_START = re.compile(r"^\s*(❌|⛔|🚫|✖|error\b)", re.IGNORECASE)


def looks_like_error(view: MessageView) -> bool:
    """Whether a reply is an error by the convention in this module's docstring."""
    first_title = view.embeds[0].get("title", "") if view.embeds else ""
    if _ERROR_START.match(view.content or "") or _ERROR_START.match(first_title or ""):
        return True
    return any(e.get("color") in ERROR_COLOURS for e in view.embeds)


_MENTION = re.compile(r"<(@!?|#|@&)(\d+)>")
_TIMESTAMP = re.compile(r"<t:(\d+)(?::[tTdDfFR])?>")


def humanize(text: str, world: World | None) -> str:
    """Show mentions as @name, #name and @role, and timestamps as dates, as a client would."""
    if world is None or not text:
        return text

    def name(match: re.Match[str]) -> str:
        kind, ident = match.group(1), int(match.group(2))
        if kind.startswith("@!") or kind == "@":
            user = world.users.get(ident)
            return f"@{user.username}" if user else match.group(0)
        if kind == "#":
            channel = world.channels.get(ident)
            return f"#{channel.name}" if channel else match.group(0)
        role = next(
            (r for g in world.guilds.values() for r in g.roles.values() if r.id == ident), None
        )
        return f"@{role.name}" if role else match.group(0)

    def when(match: re.Match[str]) -> str:
        moment = datetime.fromtimestamp(int(match.group(1)), UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")

    return _TIMESTAMP.sub(when, _MENTION.sub(name, text))


def _embed(embed: dict[str, Any], world: World | None) -> Panel:
    parts: list[Text] = []
    if embed.get("author", {}).get("name"):
        parts.append(Text(embed["author"]["name"], style="dim"))
    if embed.get("description"):
        parts.append(Text(humanize(embed["description"], world)))
    for fld in embed.get("fields", []):
        line = Text()
        line.append(f"{fld.get('name', '')}: ", style="bold")
        line.append(humanize(str(fld.get("value", "")), world))
        parts.append(line)
    colour = embed.get("color")
    footer = (embed.get("footer") or {}).get("text")
    return Panel(
        Group(*parts) if parts else Text(""),
        title=embed.get("title"),
        title_align="left",
        subtitle=footer,
        subtitle_align="left",
        border_style=f"#{colour:06x}" if colour else "white",
        expand=False,
    )


def _components(items: list[dict[str, Any]]) -> list[Text]:
    lines: list[Text] = []
    for item in items:
        kind = item.get("type")
        if kind == 2:
            label = item.get("label") or item.get("emoji", {}).get("name") or ""
            state = " (disabled)" if item.get("disabled") else ""
            target = item.get("custom_id") or item.get("url") or ""
            lines.append(Text(f"  [button] {label} -> {target}{state}", style="magenta"))
        elif kind in (3, 5, 6, 7, 8):
            values = ", ".join(o.get("label", "") for o in item.get("options", []))
            lines.append(Text(f"  [select] {item.get('custom_id')}: {values}", style="magenta"))
        elif kind == 4:
            lines.append(
                Text(f"  [input] {item.get('label')} ({item.get('custom_id')})", style="magenta")
            )
        lines += _components(item.get("components") or [])
    return lines


def render(console: Console, view: MessageView, where: str, world: World | None = None) -> None:
    """Print one bot message: a header with tags, content, embeds, components, attachments.

    With `world`, mentions are shown by name.
    """
    tags = [
        t
        for t, on in (
            ("ephemeral", view.ephemeral),
            (view.kind, view.kind != "message"),
            ("error", looks_like_error(view)),
        )
        if on
    ]
    header = Text("GuildBot", style="bold cyan")
    header.append(f" {where}", style="cyan")
    for tag in tags:
        header.append(f" [{tag}]", style="red" if tag == "error" else "yellow")
    console.print(header)
    if view.content:
        console.print(Text(humanize(view.content, world)), soft_wrap=True)
    for embed in view.embeds:
        console.print(_embed(embed, world))
    for line in _components(view.components):
        console.print(line)
    for item in view.attachments:
        console.print(Text(f"  attachment: {item.filename} ({item.size} bytes)", style="blue"))
