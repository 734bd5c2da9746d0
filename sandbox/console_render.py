"""Drawing replies in the terminal with rich: embeds as panels, tags for ephemeral and more,
Discord's markdown and timestamps (sandbox.console_markdown), mentions by name.

A reply counts as an error when its content or first embed title starts with ❌, ⛔, 🚫, ✖,
"Error" or "error:", or when an embed's colour is one of Discord's reds (0xE74C3C, 0xED4245,
0xDA373C, 0x992D22, 0xFF0000). The bot should use one of those for its error replies.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from sandbox.console_markdown import discord_markdown, timestamps
from sandbox.records import MessageView
from sandbox.world import World

ERROR_COLOURS = {0xE74C3C, 0xED4245, 0xDA373C, 0x992D22, 0xFF0000}
_ERROR_START = re.compile(r"^\s*(❌|⛔|🚫|✖|error\b)", re.IGNORECASE)


def looks_like_error(view: MessageView) -> bool:
    """Whether a reply is an error by the convention in this module's docstring."""
    first_title = view.embeds[0].get("title", "") if view.embeds else ""
    if _ERROR_START.match(view.content or "") or _ERROR_START.match(first_title or ""):
        return True
    return any(e.get("color") in ERROR_COLOURS for e in view.embeds)


_MENTION = re.compile(r"<(@!?|#|@&)(\d+)>")


def humanize(text: str, world: World | None) -> str:
    """Show mentions as @name, #name and @role, and timestamps as a client would."""
    if not text:
        return text
    text = timestamps(text)
    if world is None:
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

    return _MENTION.sub(name, text)


def draw(text: str, world: World | None) -> Text:
    """Text from the bot as a Discord client draws it: names, times and markdown."""
    return discord_markdown(humanize(text, world))


def _embed(embed: dict[str, Any], world: World | None) -> Panel:
    parts: list[Text] = []
    if embed.get("author", {}).get("name"):
        parts.append(Text(embed["author"]["name"], style="dim"))
    if embed.get("description"):
        parts.append(draw(embed["description"], world))
    for fld in embed.get("fields", []):
        name, value = humanize(fld.get("name", ""), world), str(fld.get("value", ""))
        if "\n" in value or not fld.get("inline"):  # the name above, as Discord shows it
            parts += [Text(name, style="bold"), draw(value, world)]
        else:
            parts.append(Text(f"{name}: ", style="bold").append_text(draw(value, world)))
    colour = embed.get("color")
    footer = (embed.get("footer") or {}).get("text")
    title = embed.get("title")
    return Panel(
        Group(*parts) if parts else Text(""),
        title=Text(humanize(title, world)) if title else None,
        title_align="left",
        subtitle=Text(humanize(footer, world)) if footer else None,
        subtitle_align="left",
        border_style=f"#{colour:06x}" if colour else "white",
        expand=False,
    )


def _components(items: list[dict[str, Any]], labels: Counter[str] | None = None) -> list[Text]:
    """Buttons by label (``click LABEL`` presses one; the id is shown only when the label is
    missing or shared), selects and inputs with their ids, links with their URLs."""
    labels = labels if labels is not None else Counter(_labels(items))
    lines: list[Text] = []
    for item in items:
        kind = item.get("type")
        if kind == 2:
            label = item.get("label") or item.get("emoji", {}).get("name") or ""
            line = Text(f"  [button] {label}", style="magenta")
            if item.get("url"):
                line.append(f" -> {item['url']}", style="blue")
            elif not label or labels[label.casefold()] > 1:
                line.append(f" (id {item.get('custom_id')})", style="dim")
            if item.get("disabled"):
                line.append(" (disabled)", style="dim")
            lines.append(line)
        elif kind in (3, 5, 6, 7, 8):
            values = ", ".join(o.get("label", "") for o in item.get("options", []))
            lines.append(Text(f"  [select] {item.get('custom_id')}: {values}", style="magenta"))
        elif kind == 4:
            lines.append(
                Text(f"  [input] {item.get('label')} ({item.get('custom_id')})", style="magenta")
            )
        lines += _components(item.get("components") or [], labels)
    return lines


def _labels(items: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for item in items:
        if item.get("type") == 2 and item.get("label"):
            found.append(str(item["label"]).casefold())
        found += _labels(item.get("components") or [])
    return found


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
        console.print(draw(view.content, world), soft_wrap=True)
    for embed in view.embeds:
        console.print(_embed(embed, world))
    for line in _components(view.components):
        console.print(line)
    for item in view.attachments:
        console.print(Text(f"  attachment: {item.filename} ({item.size} bytes)", style="blue"))
