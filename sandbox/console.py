"""The interactive console: type as a member of the demo guild and see the bot's replies.

Lines are slash commands (``/balance``), messages (``!warn @bob spam``, ``hello``) or console
commands (``as bob``, ``in #modlog``, ``dms bob``, ``click ID``, ``help``...). Script directives
(``expect ...``) check the outcome of the command above them. See docs/sandbox.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Console as RichConsole
from rich.text import Text

from sandbox.console_parse import (
    Directive,
    find_button,
    parse_directive,
    parse_slash,
    split,
    usages,
)
from sandbox.console_render import draw, looks_like_error, render
from sandbox.core import SandboxTimeout
from sandbox.driver import Driver
from sandbox.errors import SandboxError
from sandbox.records import MessageView
from sandbox.world import DM, Message, World

if TYPE_CHECKING:
    from sandbox.console_terminal import Terminal

_MEMBER_REF = re.compile(r"(?<![<\w])@(?!everyone\b|here\b)([\w.]+)")
_CHANNEL_REF = re.compile(r"(?<![<\w])#([\w-]+)")
HELP = """\
/name args...              a slash command: options in the order `commands` shows them, or
                           name:value in any order (/ban user:@carol duration:7d reason:raid)
!command args, any text    send a message as the current member (@name, #channel mention)
as NAME [line]             become NAME, or run one line as NAME
in #channel                switch channel
click LABEL                press a button of the last bot message (click next; or its id)
dms NAME                   show the bot's DMs to NAME
members | commands         list members / the bot's slash commands and their options
mod ban|kick|unban NAME [reason], mod timeout NAME SECONDS [reason]
join NAME | leave NAME     a member joins or leaves
expect "text" | expect-error ["text"] | expect-no-reply | expect-dm NAME ["text"]
help | quit                (Ctrl-C clears the line or stops a command; Ctrl-D quits)"""


@dataclass
class Outcome:
    """What one line produced: the bot messages printed and whether it failed."""

    replies: list[MessageView] = field(default_factory=list)
    dms: dict[int, list[MessageView]] = field(default_factory=dict)
    error: str | None = None
    #: Names mentions and channels in ``text()`` when given.
    world: World | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None or any(looks_like_error(r) for r in self.replies[:1])

    def text(self) -> str:
        """The replies' text as the console shows it (names, times, no markdown marks)."""
        return shown(self.replies, self.world)

    def contains(self, needle: str, user_id: int | None = None) -> bool:
        """Whether the replies (or the DMs to ``user_id``) show ``needle``, in any case; the
        raw text (``<@id>``, ``**bold**``) counts too."""
        views = self.replies if user_id is None else self.dms.get(user_id, [])
        haystack = shown(views, self.world) + "\n" + "\n".join(v.text() for v in views)
        return needle.lower() in haystack.lower()


def shown(views: list[MessageView], world: World | None) -> str:
    """The text of ``views`` as the console draws it."""
    return "\n".join(draw(v.text(), world).plain for v in views)


class Console:
    """Runs console lines against a sandbox through a :class:`Driver`."""

    def __init__(
        self,
        driver: Driver,
        out: RichConsole,
        *,
        member: str = "alice",
        channel: str = "general",
        reply_timeout: float = 5.0,
        settle: float = 0.3,
        prefix: str = "!",
    ) -> None:
        self.driver = driver
        self.out = out
        self.guild = next(iter(driver.world.guilds.values()))
        self.member = driver.member(self.guild, member)
        self.channel = driver.channel(self.guild, channel)
        self.reply_timeout = reply_timeout
        self.settle = settle
        self.prefix = prefix
        self.last_bot_message: MessageView | None = None
        self.failures: list[str] = []

    # -- lines --------------------------------------------------------------------------------
    async def run_line(self, line: str) -> Outcome | None:
        """Execute one line; None for lines without an outcome (blank, comments, switches)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        word, _, rest = line.partition(" ")
        handler = self._COMMANDS.get(word.lower())
        try:
            if handler is not None:
                return await handler(self, rest.strip())
            if line.startswith("/"):
                return await self._slash(line[1:])
            return await self._message(line)
        except (LookupError, ValueError, SandboxError) as exc:
            self.out.print(Text(f"✗ {exc}", style="red"))
            return Outcome(error=str(exc))

    async def _as(self, rest: str) -> Outcome | None:
        name, _, line = rest.partition(" ")
        who = self.driver.member(self.guild, name)
        if not line:
            self.member = who
            self.out.print(Text(f"you are now {who.user.username}", style="dim"))
            return None
        previous, self.member = self.member, who
        try:
            return await self.run_line(line)
        finally:
            self.member = previous

    async def _in(self, rest: str) -> None:
        self.channel = self.driver.channel(self.guild, rest)
        self.out.print(Text(f"now in #{self.channel.name}", style="dim"))

    async def _help(self, rest: str) -> None:
        self.out.print(Text(HELP))

    async def _members(self, rest: str) -> None:
        for member in self.guild.members.values():
            roles = ", ".join(self.guild.roles[r].name for r in member.roles)
            self.out.print(Text(f"{member.user.username:<12} {roles}"))

    def _registered(self) -> dict[str, dict[str, Any]]:
        """The bot's chat commands by name (this guild's over global ones)."""
        found = [*self.driver.world.commands.values(), *self.guild.commands.values()]
        return {c["name"]: c for c in found if c.get("type", 1) == 1}

    async def _commands(self, rest: str) -> None:
        lines = [u for c in sorted(self._registered().values(), key=_name) for u in usages(c)]
        if not lines:
            self.out.print(Text("the bot has registered no slash commands", style="dim"))
        width = max((len(usage) for usage, _ in lines), default=0)
        for usage, description in lines:
            line = Text(usage.ljust(width + 2), style="bold")
            line.append(description, style="dim")
            self.out.print(line, no_wrap=True, overflow="ellipsis")
        self.out.print(Text("[option] is optional; name:value sets one by name", style="dim"))

    async def _dms(self, rest: str) -> None:
        user = self.driver.user(rest)
        views = self.driver.dms(user)
        if not views:
            self.out.print(Text(f"no DMs to {user.username}", style="dim"))
        for view in views:
            render(self.out, view, f"DM to {user.username}", self.driver.world)

    async def _click(self, rest: str) -> Outcome:
        if self.last_bot_message is None:
            raise ValueError("no bot message to click on")
        custom_id = find_button(self.last_bot_message.components, rest)
        handle = await self.driver.click(self.last_bot_message.id, custom_id, self.member)
        return await self._await_interaction(handle.record.id, handle.wait_response)

    async def _moderate(self, rest: str) -> Outcome:
        words = split(rest)
        if len(words) < 2:
            raise ValueError("usage: mod ban|kick|unban|timeout NAME ...")
        action, target, args = words[0], words[1].lstrip("@"), words[2:]
        mark = self.driver.world.ids.next()
        if action == "timeout":
            seconds = float(args[0]) if args else 60.0
            await self.driver.timeout(
                self.guild, self.member, target, seconds, " ".join(args[1:]) or None
            )
        elif action in ("ban", "kick", "unban"):
            await getattr(self.driver, action)(
                self.guild, self.member, target, " ".join(args) or None
            )
        else:
            raise ValueError(f"unknown moderation action {action!r}")
        self.out.print(Text(f"{self.member.user.username} did {action} {target}", style="dim"))
        return await self._settle_and_print(mark, None)

    async def _join(self, rest: str) -> Outcome:
        mark = self.driver.world.ids.next()
        await self.driver.add_member(self.guild, rest.lstrip("@"))
        return await self._settle_and_print(mark, None)

    async def _leave(self, rest: str) -> Outcome:
        mark = self.driver.world.ids.next()
        await self.driver.remove_member(self.guild, rest.lstrip("@"))
        return await self._settle_and_print(mark, None)

    async def _quit(self, rest: str) -> None:
        raise EOFError

    _COMMANDS: ClassVar[dict[str, Callable[[Console, str], Awaitable[Outcome | None]]]] = {
        "as": _as,
        "in": _in,
        "help": _help,
        "members": _members,
        "commands": _commands,
        "dms": _dms,
        "click": _click,
        "mod": _moderate,
        "join": _join,
        "leave": _leave,
        "quit": _quit,
        "exit": _quit,
    }

    # -- bot activity -------------------------------------------------------------------------
    async def _slash(self, text: str) -> Outcome:
        words = split(text)
        if not words:
            raise ValueError("type a command after /: `commands` lists them")
        command = self._registered().get(words[0].lower())
        if command is None:
            raise LookupError(self._unknown(words[0]))
        call = parse_slash(command, words[1:])
        handle = await self.driver.slash(
            self.guild, self.channel, self.member, call.name, sub=call.sub, **call.options
        )
        return await self._await_interaction(handle.record.id, handle.wait_response)

    async def _await_interaction(
        self, interaction_id: int, wait: Callable[[float], Awaitable[MessageView]]
    ) -> Outcome:
        try:
            await wait(self.reply_timeout)
        except SandboxTimeout:
            outcome = await self._settle_and_print(interaction_id, interaction_id)
            outcome.error = "the application did not respond"
            self.out.print(Text(f"✗ {outcome.error}", style="red"))
            return outcome
        return await self._settle_and_print(interaction_id, interaction_id)

    def _unknown(self, name: str) -> str:
        """The answer to a command the bot has not registered, with the nearest names."""
        close = difflib.get_close_matches(name.lower(), self._registered(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return f"the bot has no command {name!r}.{hint} `commands` lists them."

    def _with_mentions(self, text: str) -> str:
        """Turn ``@name`` and ``#channel`` into real mentions, as the Discord client does.

        ``@name`` is a member, else any user the sandbox knows (someone who left or was
        banned: ``!unban @bob``), else a role.
        """

        def member(match: re.Match[str]) -> str:
            name = match.group(1)
            with contextlib.suppress(LookupError):
                return f"<@{self.driver.member(self.guild, name).id}>"
            with contextlib.suppress(LookupError):
                return f"<@{self.driver.user(name).id}>"
            with contextlib.suppress(LookupError):
                return f"<@&{self.driver.world.role(self.guild, name).id}>"
            return match.group(0)

        def channel(match: re.Match[str]) -> str:
            try:
                return f"<#{self.driver.channel(self.guild, match.group(1)).id}>"
            except LookupError:
                return match.group(0)

        return _CHANNEL_REF.sub(channel, _MEMBER_REF.sub(member, text))

    async def _message(self, text: str) -> Outcome:
        """Send a message; wait for a reply to a known command, else only ``settle``.

        A prefix command the bot has not registered as a slash command (every command of a
        hybrid bot is both) is answered by the console at once rather than after
        ``reply_timeout``; a prefix-only command that replies within ``settle`` still shows.
        """
        text = self._with_mentions(text)
        sent = await self.driver.send_message(self.guild, self.channel, self.member, text)
        name = text[len(self.prefix) :].split(maxsplit=1)[0] if text.startswith(self.prefix) else ""
        known = bool(name) and name.lower() in self._registered()
        with contextlib.suppress(SandboxTimeout):
            await self.driver.wait_reply(sent, self.reply_timeout if known else self.settle)
        outcome = await self._settle_and_print(sent.id, None, quiet=bool(name) and not known)
        if name and not known and not outcome.replies and not outcome.dms:
            self.out.print(Text(f"(no reply: {self._unknown(name)})", style="dim"))
        return outcome

    def _activity(self, mark: int, interaction_id: int | None) -> list[MessageView]:
        """Bot messages after ``mark``: channel posts, DMs, and this interaction's replies."""
        world = self.driver.world
        found: list[Message] = []
        for msg in reversed(world.messages.values()):
            if msg.id <= mark:
                break
            visible = msg.ephemeral_to in (None, self.member.id)
            if msg.author_id == world.bot.id and visible and msg.interaction_id is None:
                found.append(msg)
        views = [self.driver.view(m) for m in reversed(found)]
        if interaction_id is not None:
            views = self.driver.interaction(interaction_id).history + views
        return views

    async def _settle(self, mark: int, interaction_id: int | None) -> None:
        """Return once the bot has been quiet for ``settle`` seconds (at most 50 rounds)."""
        for _ in range(50):
            seen = len(self._activity(mark, interaction_id))

            def more(seen: int = seen) -> bool | None:
                return True if len(self._activity(mark, interaction_id)) != seen else None

            try:
                await self.driver.wait_until(more, self.settle, "more bot activity")
            except SandboxTimeout:
                return

    async def _settle_and_print(
        self, mark: int, interaction_id: int | None, *, quiet: bool = False
    ) -> Outcome:
        """Wait until the bot is quiet, then print everything it did since ``mark``."""
        await self._settle(mark, interaction_id)
        outcome = Outcome(world=self.driver.world)
        for view in self._activity(mark, interaction_id):
            channel = self.driver.world.channels[view.channel_id]
            if channel.type == DM:
                user = self.driver.world.users[channel.recipient_ids[0]]
                outcome.dms.setdefault(user.id, []).append(view)
                where = f"DM to {user.username}"
            else:
                outcome.replies.append(view)
                where = f"#{channel.name}"
            if view.kind != "modal":
                self.last_bot_message = view
            render(self.out, view, where, self.driver.world)
        if not outcome.replies and not outcome.dms and not quiet:
            self.out.print(Text("(no reply)", style="dim"))
        return outcome

    # -- scripts ------------------------------------------------------------------------------
    def check(self, outcome: Outcome | None, directives: list[Directive], where: str) -> None:
        """Apply directives to an outcome; record failures (unexpected errors included)."""
        if outcome is None:
            if directives:
                self._fail(where, "directive after a line that has no outcome")
            return
        expects_error = any(d.kind == "expect-error" for d in directives)
        if outcome.is_error and not expects_error:
            self._fail(where, f"unexpected error reply: {outcome.error or outcome.text()!r}")
        for directive in directives:
            problem = self._problem(outcome, directive)
            if problem:
                self._fail(where, problem)

    def _problem(self, outcome: Outcome, d: Directive) -> str | None:
        if d.kind == "expect-error" and not outcome.is_error:
            return f"expected an error, got {outcome.text()!r}"
        if d.kind in ("expect", "expect-error") and not outcome.contains(d.text):
            return f"expected {d.text!r} in {outcome.text()!r}"
        if d.kind == "expect-no-reply" and (outcome.replies or outcome.dms):
            return f"expected no reply, got {outcome.text()!r}"
        if d.kind == "expect-dm":
            user = self.driver.user(d.user)
            if user.id not in outcome.dms or not outcome.contains(d.text, user.id):
                return f"expected a DM to {d.user} containing {d.text!r}"
        return None

    def _fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")
        self.out.print(Text(f"✗ {where}: {message}", style="bold red"))

    async def run_lines(self, lines: list[str], name: str = "script") -> None:
        """Run lines with their directives; failures are collected in ``self.failures``."""
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if parse_directive(line) is not None:
                self._fail(f"{name}:{index}", "directive without a command before it")
                continue
            if line.strip() and not line.strip().startswith("#"):
                self.out.print(
                    Text(f"{self.member.user.username} › {line.strip()}", style="bold green")
                )
            start = index
            directives: list[Directive] = []
            while index < len(lines) and (found := parse_directive(lines[index])) is not None:
                directives.append(found)
                index += 1
            try:
                outcome = await self.run_line(line)
            except EOFError:  # `quit` in a script ends it
                return
            self.check(outcome, directives, f"{name}:{start}")

    async def interactive(self, terminal: Terminal) -> None:
        """Read-eval-print until ``quit``, Ctrl-D or Ctrl-C twice; a directive checks the last
        outcome; Ctrl-C stops a line that runs."""
        outcome: Outcome | None = None
        while (line := await terminal.read(self.prompt())) is not None:
            directive = parse_directive(line)
            if directive is not None:
                problem = self._problem(outcome, directive) if outcome else "nothing to check"
                self.out.print(
                    Text(f"✗ {problem}", style="red") if problem else Text("✓", style="green")
                )
                continue
            try:
                outcome = await terminal.run(self.run_line(line)) or outcome
            except EOFError:
                return

    def prompt(self) -> str:
        """Who and where you are: ``alice #general › ``."""
        return f"{self.member.user.username} #{self.channel.name} › "


def _name(command: dict[str, Any]) -> str:
    return str(command["name"])


def describe(driver: Driver, console: Console, *, fresh: bool, log_file: Path) -> Text:
    """The banner shown at start."""
    banner = Text(f"Sandbox {driver.server.url}", style="bold")
    banner.append(
        f" — guild {console.guild.name}; you are {console.member.user.username} in "
        f"#{console.channel.name}. Type help (Ctrl-D quits).\n"
    )
    state = "the bot's data starts afresh too (--keep keeps it)"
    if not fresh:
        state = "the bot keeps its data from the last run (--keep)"
    banner.append(f"A new demo world; {state}. The bot's log: {log_file}", style="dim")
    return banner


async def ready(client: Any, timeout: float) -> None:  # noqa: ASYNC109
    """Wait for a discord.py client to be ready, if it can tell."""
    waiter = getattr(client, "wait_until_ready", None)
    if waiter is not None:
        await asyncio.wait_for(waiter(), timeout)
