"""One error handler for every command, slash or prefix.

Expected failures (a domain refusal, a bad argument, a missing permission, Discord refusing
for want of a permission) get one short ephemeral reply saying what to do. Anything else is
logged with its context and answered with a generic apology; no error escapes to crash a shard.
A prefix command typed where the bot may not answer is refused before it runs, and the member
is told by DM (CannotAnswer).
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from app.bot import discord_internals as internals
from app.bot import telemetry
from app.bot.render import amount, clip, timestamp
from app.bot.replies import AlreadyAnswered
from app.domain.errors import DailyNotReady, DomainError, InsufficientFunds
from app.ops import metrics
from app.ops.deadline import DeadlineExceeded

log = logging.getLogger(__name__)

#: Error replies start with it, so people (and the sandbox console) tell them apart.
ERROR_MARK = "❌"
#: Discord's answer when an interaction was already acknowledged (by an earlier delivery)...
ALREADY_ACKNOWLEDGED = 40060
#: ...and when it expired (no response within its 3 s) or never existed.
UNKNOWN_INTERACTION = 10062
STALE_INTERACTION = {ALREADY_ACKNOWLEDGED, UNKNOWN_INTERACTION}
GENERIC = "Something went wrong on my side. It has been logged; please try again in a moment."
TRY_AGAIN = (
    "I could not finish this in time (the database is slow or unreachable), so nothing was"
    " changed. Please try again in a moment."
)


class Refusal(commands.CommandError):
    """A refusal decided in the bot layer (target rules, Discord state); shown as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CannotAnswer(Refusal):
    """A prefix command typed in a channel where the bot may not answer: refused unrun."""


def unwrap(error: BaseException) -> BaseException:
    """The error a command really raised, without discord.py's invoke wrappers."""
    seen = 0
    while seen < 10:
        seen += 1
        if isinstance(
            error,
            commands.HybridCommandError
            | commands.CommandInvokeError
            | app_commands.CommandInvokeError,
        ):
            error = error.original
        elif isinstance(error, app_commands.TransformerError) and isinstance(
            error.__cause__, commands.CommandError | DomainError
        ):
            error = error.__cause__
        elif isinstance(error, commands.ConversionError) and isinstance(
            error.original, DomainError
        ):
            error = error.original
        else:
            break
    return error


def perm_names(perms: list[str]) -> str:
    """Permission names as Discord's settings show them: "Ban Members, Manage Server"."""
    return ", ".join(p.replace("_", " ").replace("guild", "server").title() for p in perms)


def _usage(ctx: commands.Context[Any] | None) -> str:
    if ctx is None or ctx.command is None:
        return ""
    if ctx.interaction is not None:
        return f" Usage: `/{ctx.command.qualified_name} {ctx.command.signature}`".rstrip()
    prefix = ctx.clean_prefix or "!"
    return f" Usage: `{prefix}{ctx.command.qualified_name} {ctx.command.signature}`"


def _extra_words(ctx: commands.Context[Any] | None) -> str:
    if ctx is None or ctx.interaction is not None:
        return ""
    rest = clip(internals.rest_of(ctx).replace("`", "'"), 40)
    return f" `{rest}`" if rest else ""


def describe(
    error: BaseException, ctx: commands.Context[Any] | None = None, currency: str = "coins"
) -> str | None:
    """The reply for an expected failure, or None when the error is unexpected.

    `currency` is the server's name for coins, for refusals that count them.
    """
    if isinstance(error, InsufficientFunds):
        return (
            f"Not enough {currency}: the balance is {amount(error.balance, currency)}, "
            f"{amount(error.needed, currency)} needed."
        )
    if isinstance(error, DailyNotReady):
        when = timestamp(error.available_at, "R")
        return f"You already claimed today's reward. Come back {when}."
    if isinstance(error, DomainError):
        return error.message
    if isinstance(error, DeadlineExceeded):
        return TRY_AGAIN
    if isinstance(error, Refusal):
        return error.message
    if isinstance(error, commands.MissingPermissions | app_commands.MissingPermissions):
        return f"You need the {perm_names(error.missing_permissions)} permission to do that."
    if isinstance(error, commands.BotMissingPermissions | app_commands.BotMissingPermissions):
        return f"I need the {perm_names(error.missing_permissions)} permission to do that."
    if isinstance(error, commands.NoPrivateMessage | app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure):
        return "You cannot use this command here."
    if isinstance(error, commands.MissingRequiredArgument):
        return f"Missing `{error.param.name}`." + _usage(ctx)
    if isinstance(error, commands.MemberNotFound):
        return "I could not find that member in this server." + _usage(ctx)
    if isinstance(error, commands.UserNotFound):
        return "I could not find that user." + _usage(ctx)
    if isinstance(error, commands.ChannelNotFound):
        return "I could not find that channel." + _usage(ctx)
    if isinstance(error, commands.BadLiteralArgument):
        choices = ", ".join(f"`{c}`" for c in error.literals)
        return f"`{error.param.name}` must be one of {choices}."
    if isinstance(error, commands.BadArgument | commands.BadUnionArgument):
        text = str(error)
        if text.startswith(("Converting to", "Could not convert")) and ctx is not None:
            name = ctx.current_parameter.name if ctx.current_parameter else "argument"
            shown = clip(str(ctx.current_argument or "").replace("`", "'"), 40)
            text = f"`{shown}` is not a valid {name}."
        return text + _usage(ctx)
    if isinstance(error, commands.TooManyArguments):
        return f"I do not know what to do with{_extra_words(ctx)}." + _usage(ctx)
    if isinstance(error, commands.ArgumentParsingError):
        return "I could not read those arguments (check the quotes)." + _usage(ctx)
    if isinstance(error, commands.UserInputError):
        return "Those arguments do not fit this command." + _usage(ctx)
    if isinstance(error, app_commands.TransformerError):
        return f"`{clip(str(error.value), 40)}` is not a valid value here." + _usage(ctx)
    if isinstance(error, commands.CommandOnCooldown | app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, commands.MaxConcurrencyReached):
        return "That command is busy; try again in a moment."
    if isinstance(error, commands.DisabledCommand):
        return "That command is disabled."
    if isinstance(error, discord.Forbidden):
        return f"Discord did not let me do that: I lack a permission there ({error.text or 403})."
    return None


def is_stale_interaction(error: BaseException) -> bool:
    """True when Discord refused a reply because the interaction was answered or expired."""
    return isinstance(error, discord.HTTPException) and error.code in STALE_INTERACTION


def context_of(ctx: commands.Context[Any]) -> dict[str, Any]:
    """Ids that let a log reader find the failing request."""
    return {
        "command": ctx.command.qualified_name if ctx.command else None,
        "guild": ctx.guild.id if ctx.guild else None,
        "channel": ctx.channel.id if ctx.channel else None,
        "user": ctx.author.id,
        "interaction": ctx.interaction.id if ctx.interaction else None,
        "message": None if ctx.interaction else ctx.message.id,
    }


async def send_ephemeral(ctx: commands.Context[Any], text: str) -> None:
    """Reply privately where Discord allows it (slash), else as a plain reply; never raises."""
    try:
        await ctx.send(clip(f"{ERROR_MARK} {text}", 2000), ephemeral=True)
    except AlreadyAnswered:
        pass  # another delivery of this message was answered (GuildContext.send logged it)
    except discord.HTTPException as error:
        log.warning("could not send an error reply: %s", error)


async def currency_of(ctx: commands.Context[Any]) -> str:
    """The server's name for coins ("coins" outside a server or before the services open)."""
    bot: Any = ctx.bot
    if ctx.guild is None or not getattr(bot, "has_services", False):
        return "coins"
    try:
        config = await bot.services.guilds.cached(ctx.guild.id)
    except Exception as error:  # the refusal is still answered, in plain "coins"
        log.warning("could not read the currency's name of guild %s: %r", ctx.guild.id, error)
        return "coins"
    return str(config.currency_name)


async def tell_by_dm(ctx: commands.Context[Any], text: str) -> None:
    """Send an error reply to the author by DM (where the channel cannot take it); never raises."""
    try:
        await ctx.author.send(clip(f"{ERROR_MARK} {text}", 2000))
    except discord.HTTPException as error:
        log.info("could not DM user %s either: %s", ctx.author.id, error)


async def on_command_error(ctx: commands.Context[Any], error: Exception) -> None:
    """The bot's single handler for command errors (prefix and hybrid slash)."""
    cause = unwrap(error)
    if isinstance(cause, commands.CommandNotFound | AlreadyAnswered):
        return
    if is_stale_interaction(cause):
        log.info("interaction %s was answered already or expired", context_of(ctx)["interaction"])
        return
    currency = await currency_of(ctx) if isinstance(cause, InsufficientFunds) else "coins"
    message = describe(cause, ctx, currency)
    if isinstance(cause, DeadlineExceeded):
        _abandoned(ctx, cause)
    else:
        telemetry.command_finished(ctx, "refused" if message is not None else "error")
    if isinstance(cause, CannotAnswer):
        log.info("refused where I cannot answer: %s", context_of(ctx))
        await tell_by_dm(ctx, cause.message)
        return
    if isinstance(cause, discord.Forbidden):
        log.warning("Discord refused a command's request (%s): %s", cause.text, context_of(ctx))
    if message is None:
        log.error("command failed: %s", context_of(ctx), exc_info=cause)
        metrics.ERRORS.labels("command").inc()
        message = GENERIC
    await send_ephemeral(ctx, message)


def _abandoned(ctx: commands.Context[Any], cause: DeadlineExceeded) -> None:
    """A command whose work ran out of time before it committed: logged and counted."""
    name = ctx.command.qualified_name if ctx.command else "unknown"
    telemetry.command_finished(ctx, "expired")
    telemetry.command_expired(name, "slash" if ctx.interaction else "prefix")
    log.warning("abandoned at its deadline, nothing written: %s (%s)", context_of(ctx), cause)


async def on_app_command_error(
    interaction: discord.Interaction, error: app_commands.AppCommandError
) -> None:
    """Errors raised before a hybrid command builds its context (tree level)."""
    cause = unwrap(error)
    if is_stale_interaction(cause):
        return
    message: str | None
    if isinstance(cause, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        message = "This command is out of date; try again in a minute."
    else:
        message = describe(cause)
    if message is None:
        metrics.ERRORS.labels("app_command").inc()
        log.error(
            "app command failed: guild=%s user=%s interaction=%s",
            interaction.guild_id,
            interaction.user.id,
            interaction.id,
            exc_info=cause,
        )
        message = GENERIC
    text = clip(f"{ERROR_MARK} {message}", 2000)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as failure:
        log.warning("could not send an error reply: %s", failure)
