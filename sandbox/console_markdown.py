"""Discord's markdown and ``<t:…>`` timestamps, drawn in the terminal as rich Text.

Discord's markdown is not CommonMark: every line break is kept, ``__x__`` underlines, ``||x||``
hides a spoiler, ``-# x`` is small print, and headings are just bigger text. So rather than
rich's Markdown renderer (which joins lines into paragraphs and boxes headings) this draws
Discord's subset line by line: **bold**, *italic*, __underline__, ~~strike~~, ``code`` and
code blocks, ||spoilers||, [masked](https://links), > quotes, lists and headings.

Timestamps are shown as a Discord client shows them, in the local time zone: ``R`` relative
("in 2 h", "5 min ago"), ``t`` 05:41, ``T`` 05:41:07, ``d`` 2026-12-03, ``D`` 3 December 2026,
``f`` (the default) 3 December 2026 05:41, ``F`` Thursday, 3 December 2026 05:41.
"""

from __future__ import annotations

import re
from datetime import datetime

from rich.text import Text

_TIMESTAMP = re.compile(r"<t:(-?\d+)(?::([tTdDfFR]))?>")
_FORMATS = {
    "t": "%H:%M",
    "T": "%H:%M:%S",
    "d": "%Y-%m-%d",
    "D": "{day} %B %Y",
    "f": "{day} %B %Y %H:%M",
    "F": "%A, {day} %B %Y %H:%M",
}
#: (limit in seconds, seconds per unit, unit name, plural) for relative times.
_UNITS = (
    (45, 1, "s", "s"),
    (45 * 60, 60, "min", "min"),
    (22 * 3600, 3600, "h", "h"),
    (26 * 86_400, 86_400, "day", "days"),
    (320 * 86_400, 30 * 86_400, "month", "months"),
    (float("inf"), 365 * 86_400, "year", "years"),
)


def relative(seconds: float) -> str:
    """``seconds`` from now as Discord words it: "in 2 h", "5 min ago", "now"."""
    size = abs(seconds)
    if size < 1:
        return "now"
    for limit, unit, one, many in _UNITS:
        if size < limit:
            count = max(round(size / unit), 1)
            text = f"{count} {one if count == 1 else many}"
            return f"in {text}" if seconds > 0 else f"{text} ago"
    raise AssertionError("unreachable: the last unit has no limit")


def timestamp(epoch: int, style: str | None, now: datetime | None = None) -> str:
    """One ``<t:epoch:style>`` as text (see the module docstring)."""
    moment = datetime.fromtimestamp(epoch).astimezone()
    if style == "R":
        current = now or datetime.now().astimezone()
        return relative((moment - current).total_seconds())
    pattern = _FORMATS.get(style or "f", _FORMATS["f"]).replace("{day}", str(moment.day))
    return moment.strftime(pattern)


def timestamps(text: str, now: datetime | None = None) -> str:
    """Every ``<t:…>`` in ``text`` replaced by its rendering."""
    return _TIMESTAMP.sub(lambda m: timestamp(int(m.group(1)), m.group(2), now), text)


_INLINE = re.compile(
    r"\\(?P<escaped>[\\*_`~|>#\[\]()-])"
    r"|(?P<ticks>`+)(?P<code>.+?)(?P=ticks)"
    r"|\*\*\*(?P<bold_italic>.+?)\*\*\*"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|__(?P<underline>.+?)__"
    r"|\*(?P<italic>[^*\s](?:.*?[^*\s])?)\*"
    r"|(?<!\w)_(?P<italic_>[^_\s](?:.*?[^_\s])?)_(?!\w)"
    r"|~~(?P<strike>.+?)~~"
    r"|\|\|(?P<spoiler>.+?)\|\|"
    r"|\[(?P<label>[^\]\n]+)\]\((?P<url>https?://[^)\s]+)\)"
)
_STYLES = {
    "bold_italic": "bold italic",
    "bold": "bold",
    "underline": "underline",
    "italic": "italic",
    "italic_": "italic",
    "strike": "strike",
    "spoiler": "reverse",
}
CODE_STYLE = "cyan"


def inline(text: str, style: str = "") -> Text:
    """One line of Discord markdown (no block syntax) as rich Text, within ``style``."""
    out = Text()
    position = 0
    for match in _INLINE.finditer(text):
        out.append(text[position : match.start()], style or None)
        position = match.end()
        found = {k: v for k, v in match.groupdict().items() if v is not None}
        if "escaped" in found:
            out.append(found["escaped"], style or None)
        elif "code" in found:
            out.append(found["code"], f"{style} {CODE_STYLE}".strip())
        elif "label" in found:
            out.append(found["label"], f"{style} underline link {found['url']}".strip())
        else:
            kind = next(k for k in _STYLES if k in found)
            out.append_text(inline(found[kind], f"{style} {_STYLES[kind]}".strip()))
    out.append(text[position:], style or None)
    return out


_HEADING = re.compile(r"^(#{1,3}) (.*)$")
_LIST = re.compile(r"^(\s*)[-*] (.*)$")


def _line(line: str) -> Text:
    if heading := _HEADING.match(line):
        return inline(heading.group(2), "bold underline" if len(heading.group(1)) == 1 else "bold")
    if line.startswith("-# "):
        return inline(line[3:], "dim")
    if item := _LIST.match(line):
        bullet = Text(f"{item.group(1)}  • ")
        return bullet.append_text(inline(item.group(2)))
    return inline(line)


def _lines(text: str) -> Text:
    """Text outside code blocks, line by line (``>>>`` quotes every line after it)."""
    out: list[Text] = []
    quote_rest = False
    for line in text.split("\n"):
        quoted = quote_rest
        if line.startswith(">>> "):
            quoted = quote_rest = True
            line = line[4:]
        elif line.startswith("> ") or line == ">":
            quoted, line = True, line[2:]
        drawn = _line(line)
        out.append(Text().append("▌ ", "dim").append_text(drawn) if quoted else drawn)
    return Text("\n").join(out)


_CODE_BLOCK = re.compile(r"```(?:[\w+-]+\n)?(.*?)```", re.DOTALL)


def discord_markdown(text: str) -> Text:
    """A message content, embed description or field value as Discord would draw it."""
    parts: list[Text] = []
    position = 0
    for block in _CODE_BLOCK.finditer(text):
        parts.append(_lines(text[position : block.start()]))
        parts.append(Text(block.group(1).strip("\n"), CODE_STYLE))
        position = block.end()
    parts.append(_lines(text[position:]))
    return Text("").join(parts)
