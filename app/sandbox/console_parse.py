"""Parsing console lines: ``/name args`` into typed options, and script directives."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

SUBCOMMAND_TYPES = (1, 2)
STRING = 3
DIRECTIVES = ("expect", "expect-error", "expect-no-reply", "expect-dm")


def split(text: str) -> list[str]:
    """Shell-like split (quotes group words); falls back to whitespace on unbalanced quotes."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


@dataclass
class SlashCall:
    name: str
    sub: str | None
    options: dict[str, Any]


def parse_slash(command: dict[str, Any], words: list[str]) -> SlashCall:
    """Map words after ``/name`` onto the command's option schema.

    Leading words choose subcommand groups and subcommands; ``name:value`` (or ``name=value``)
    sets an option by name; other words fill the remaining options in schema order, and the
    last unfilled string option takes all remaining words. Values stay strings: the driver
    converts them (``@bob`` to a user, ``#general`` to a channel, ``50`` to an integer).
    """
    schema: list[dict[str, Any]] = command.get("options") or []
    path: list[str] = []
    words = list(words)
    while any(o["type"] in SUBCOMMAND_TYPES for o in schema):
        subs = {o["name"]: o for o in schema if o["type"] in SUBCOMMAND_TYPES}
        if not words or words[0] not in subs:
            raise ValueError(f"/{command['name']} needs a subcommand: {', '.join(subs)}")
        chosen = subs[words.pop(0)]
        path.append(chosen["name"])
        schema = chosen.get("options") or []
    names = {o["name"] for o in schema}
    options: dict[str, Any] = {}
    positional: list[str] = []
    for word in words:
        key, sep, value = word.partition(":") if ":" in word else word.partition("=")
        if sep and key in names:
            options[key] = value
        else:
            positional.append(word)
    free = [o for o in schema if o["name"] not in options]
    while positional and free:
        opt = free.pop(0)
        take_rest = opt["type"] == STRING and not free
        options[opt["name"]] = " ".join(positional) if take_rest else positional[0]
        positional = [] if take_rest else positional[1:]
    if positional:
        raise ValueError(f"too many arguments: {' '.join(positional)}")
    return SlashCall(command["name"], " ".join(path) or None, options)


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
