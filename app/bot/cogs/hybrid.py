"""discord.py's hybrid command decorators, typed for cog methods so that mypy checks commands.

discord.py types a command's callback as a union of two shapes (a cog method, or a function
without `self`), and mypy cannot solve the decorator's type variables against that union: it
rejects every `@commands.hybrid_command()`. Every command here is a cog method, so these take
that one shape and return exactly what discord.py's decorators return.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from discord.ext import commands

CogT = TypeVar("CogT", bound=commands.Cog)
P = ParamSpec("P")
T = TypeVar("T")
#: A command callback: a cog method taking the context, then the command's arguments.
Method = Callable[Concatenate[CogT, commands.Context[Any], P], Coroutine[Any, Any, T]]


def command(
    **attrs: Any,
) -> Callable[[Method[CogT, P, T]], commands.HybridCommand[CogT, P, T]]:
    """`commands.hybrid_command(**attrs)`: a prefix command and a slash command in one."""
    return commands.hybrid_command(**attrs)


def group(**attrs: Any) -> Callable[[Method[CogT, P, T]], commands.HybridGroup[CogT, P, T]]:
    """`commands.hybrid_group(**attrs)`: a command with subcommands."""
    return commands.hybrid_group(**attrs)


def subcommand(
    parent: commands.HybridGroup[Any, ..., Any], **attrs: Any
) -> Callable[[Method[CogT, P, T]], commands.HybridCommand[CogT, P, T]]:
    """`parent.command(**attrs)`: a subcommand of a hybrid group."""
    return parent.command(**attrs)
