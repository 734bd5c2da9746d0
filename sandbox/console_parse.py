"""Parsing console lines: ``/name args`` into typed options, buttons by label, and directives.

**The typing order of a command's options.** Discord makes a command register its required
options before its optional ones, so ``ban user [duration] [delete_days] reason`` is registered
as user, reason, duration, delete_days. People type the free text last, where it can take every
remaining word (as the bot's prefix form and its documentation do), so the console reads
positional words in the *typing order*: the registered order with the free text (the last
required string option without choices) moved to the end. ``commands`` lists that order.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

SUBCOMMAND_TYPES = (1, 2)
STRING, INTEGER, BOOLEAN, NUMBER = 3, 4, 5, 10
BUTTON = 2
DIRECTIVES = ("expect", "expect-error", "expect-no-reply", "expect-dm")
MAX_CHOICES_SHOWN = 4
_BOOLEANS = {"true", "false", "yes", "no", "1", "0", "on", "off"}


def split(text: str) -> list[str]:
    """Shell-like split (quotes group words); falls back to whitespace on unbalanced quotes."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


@dataclass
class SlashCall:
    """A slash command ready for the driver: name, subcommand path, options by name."""

    name: str
    sub: str | None
    options: dict[str, Any]


def _is_text(option: dict[str, Any]) -> bool:
    return option["type"] == STRING and not option.get("choices")


def typing_order(schema: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The options in the order people type them (see the module docstring)."""
    free_text = [o for o in schema if _is_text(o) and o.get("required")]
    if not free_text:
        return list(schema)
    last = free_text[-1]
    return [o for o in schema if o is not last] + [last]


def _subcommand(command: dict[str, Any], words: list[str]) -> tuple[list[str], list[Any]]:
    """Consume leading words naming subcommand groups / subcommands: (path, leaf options)."""
    schema: list[dict[str, Any]] = command.get("options") or []
    path: list[str] = []
    while any(o["type"] in SUBCOMMAND_TYPES for o in schema):
        subs = {o["name"]: o for o in schema if o["type"] in SUBCOMMAND_TYPES}
        if not words or words[0] not in subs:
            where = " ".join([command["name"], *path])
            raise ValueError(f"/{where} needs a subcommand: {', '.join(subs)}")
        chosen = subs[words.pop(0)]
        path.append(chosen["name"])
        schema = chosen.get("options") or []
    return path, schema


def _fits(option: dict[str, Any], word: str) -> bool:
    """Whether ``word`` can be this option's value (checked for numbers, booleans, choices)."""
    choices = option.get("choices")
    if choices:
        return word.lower() in {str(c[k]).lower() for c in choices for k in ("name", "value")}
    if option["type"] == INTEGER:
        return re.fullmatch(r"[-+]?\d+", word) is not None
    if option["type"] == NUMBER:
        return re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", word) is not None
    if option["type"] == BOOLEAN:
        return word.lower() in _BOOLEANS
    return True


def _fill(order: list[dict[str, Any]], words: list[str], options: dict[str, Any]) -> None:
    """Give positional words to the options not named, in typing order.

    An optional option is skipped when the words left are needed by the required options
    after it, or when the word does not fit it (a number, boolean or choice); free text takes
    every remaining word once no required option follows.
    """
    free = [o for o in order if o["name"] not in options]
    for index, option in enumerate(free):
        if not words:
            return
        needed = sum(1 for o in free[index + 1 :] if o.get("required"))
        if not option.get("required") and (len(words) <= needed or not _fits(option, words[0])):
            continue
        if _is_text(option) and needed == 0:
            options[option["name"]] = " ".join(words)
            return
        options[option["name"]] = words.pop(0)
    if words:
        raise ValueError(f"too many arguments: {' '.join(words)}")


def parse_slash(command: dict[str, Any], words: list[str]) -> SlashCall:
    """Map the words after ``/name`` onto the command's options.

    Leading words choose subcommand groups and subcommands. ``name:value`` (or ``name=value``)
    sets an option by name, in any order; the last option in typing order, when it is free
    text, also takes the plain words after it, up to the next ``name:``. Other words fill the
    remaining options in typing order (see :func:`_fill`). Values stay strings: the driver
    converts them (``@bob`` to a user, ``#general`` to a channel, ``50`` to an integer).
    """
    words = list(words)
    path, schema = _subcommand(command, words)
    order = typing_order(schema)
    by_name = {o["name"]: o for o in schema}
    last_text = order[-1]["name"] if order and _is_text(order[-1]) else None
    options: dict[str, Any] = {}
    positional: list[str] = []
    taking: str | None = None  # the free text, named: it takes the words after it
    for word in words:
        key, sep, value = word.partition(":") if ":" in word else word.partition("=")
        if sep and key in by_name:
            options[key] = value
            taking = key if key == last_text else None
        elif taking is not None:
            options[taking] = f"{options[taking]} {word}".strip()
        else:
            positional.append(word)
    _fill(order, positional, options)
    return SlashCall(command["name"], " ".join(path) or None, options)


def placeholder(option: dict[str, Any]) -> str:
    """How an option is shown in a usage: its name, or its few choices (``add|remove``), in
    brackets when optional."""
    choices = option.get("choices") or []
    few = 0 < len(choices) <= MAX_CHOICES_SHOWN
    word = "|".join(str(c["name"]) for c in choices) if few else str(option["name"])
    return word if option.get("required") else f"[{word}]"


def usages(command: dict[str, Any]) -> list[tuple[str, str]]:
    """(``/name sub option [optional]``, description) for each way to run ``command``."""

    def walk(prefix: str, node: dict[str, Any]) -> list[tuple[str, str]]:
        schema = node.get("options") or []
        subs = [o for o in schema if o["type"] in SUBCOMMAND_TYPES]
        if subs:
            return [line for sub in subs for line in walk(f"{prefix} {sub['name']}", sub)]
        words = [placeholder(o) for o in typing_order(schema)]
        return [(" ".join([prefix, *words]), node.get("description", ""))]

    return walk(f"/{command['name']}", command)


def _label_key(text: str) -> str:
    """A label as people type it: lower case, without emoji and punctuation."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def buttons(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every button with a custom id among ``components`` (rows included), in order."""
    found: list[dict[str, Any]] = []
    for item in components:
        if item.get("type") == BUTTON and item.get("custom_id"):
            found.append(item)
        found += buttons(item.get("components") or [])
    return found


def find_button(components: list[dict[str, Any]], wanted: str) -> str:
    """The custom id of the button ``wanted`` names: its custom id, its label (any case,
    emoji and punctuation ignored) or the start of its label. Ambiguity is refused with the
    choices."""
    items = buttons(components)
    if any(b["custom_id"] == wanted for b in items):
        return wanted
    key = _label_key(wanted)
    labels = [(b, _label_key(b.get("label") or "")) for b in items if key]
    exact = [b for b, label in labels if label == key]
    matches = exact or [b for b, label in labels if label.startswith(key)]
    if len(matches) == 1:
        return str(matches[0]["custom_id"])
    if matches:
        choices = ", ".join(f"{b.get('label')!r} ({b['custom_id']})" for b in matches)
        raise LookupError(f"{wanted!r} matches several buttons: {choices}; click one by its id")
    names = ", ".join(repr(b.get("label") or b["custom_id"]) for b in items) or "none"
    raise LookupError(f"no button {wanted!r} on the last bot message (buttons: {names})")


@dataclass
class Directive:
    """A script check on the outcome of the command before it."""

    kind: str
    text: str = ""
    user: str = ""


def parse_directive(line: str) -> Directive | None:
    """``expect "text"``, ``expect-error ["text"]``, ``expect-no-reply``,
    ``expect-dm NAME ["text"]``; None when ``line`` is not a directive."""
    words = split(line)
    if not words or words[0] not in DIRECTIVES:
        return None
    kind, rest = words[0], words[1:]
    if kind == "expect-dm":
        if not rest:
            raise ValueError("expect-dm needs a member name")
        return Directive(kind, " ".join(rest[1:]), rest[0].lstrip("@"))
    return Directive(kind, " ".join(rest))
