"""A tiny discord.py bot for sandbox tests. Runs in-process (``start_bot``) or as a process:

    python tests/sandbox/tiny_bot.py --url http://127.0.0.1:PORT --shard-count 4 --shard-ids 0 1

It prints ``READY <pid> <shard ids>`` once on_ready fired. Behaviour: "ping" -> "pong from pid X
shard Y"; prefix commands !echo, !warn, !kick, !file; slash /roll (response + followup), /balance,
/daily, /transfer, /mod timeout|ban, /buttons (click -> edit), /slow (defer + followup), /dm,
/feedback (a modal), /never (no answer at all).
Error replies start with ❌ (the console's error convention).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import sys
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from sandbox import SANDBOX_TOKEN, point_discord_at

PID = os.getpid()


class TinyBot(commands.AutoShardedBot):
    def __init__(self, identify_delay: float = 0.0, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.members = True
        intents.message_content = True
        super().__init__(command_prefix="!", intents=intents, **options)
        self.identify_delay = identify_delay
        self.coins: dict[int, int] = {}
        self.claimed: set[int] = set()
        self.connection_task: asyncio.Task[None] | None = None

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial and self.identify_delay:
            await asyncio.sleep(self.identify_delay)

    async def setup_hook(self) -> None:
        self.tree.add_command(roll)
        self.tree.add_command(balance)
        self.tree.add_command(daily)
        self.tree.add_command(transfer)
        self.tree.add_command(Mod())
        self.tree.add_command(buttons)
        self.tree.add_command(slow)
        self.tree.add_command(never)
        self.tree.add_command(dm)
        self.tree.add_command(feedback)
        for command in (echo, warn, kick, send_file):
            self.add_command(command)
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        if message.content == "ping":
            shard = message.guild.shard_id if message.guild else 0
            await message.reply(f"pong from pid {PID} shard {shard}", mention_author=False)
            return
        await self.process_commands(message)

    async def on_audit_log_entry_create(self, entry: discord.AuditLogEntry) -> None:
        modlog = discord.utils.get(entry.guild.text_channels, name="modlog")
        if modlog is not None and self.user is not None and entry.user_id != self.user.id:
            await modlog.send(f"audit: {entry.action.name} on {entry.target} by {entry.user}")

    async def on_command_error(self, ctx: commands.Context, error: Exception) -> None:
        if isinstance(error, commands.CommandNotFound):
            return  # as bots do: the prefix may be another bot's
        original = getattr(error, "original", error)
        await ctx.reply(f"❌ {type(original).__name__}: {original}", mention_author=False)


def balance_of(bot: TinyBot, user_id: int) -> int:
    return bot.coins.setdefault(user_id, 100)


@commands.command()
async def echo(ctx: commands.Context, *, text: str) -> None:
    await ctx.reply(text, mention_author=False)


@commands.command()
async def warn(ctx: commands.Context, member: discord.Member, *, reason: str) -> None:
    try:
        await member.send(f"You were warned in {ctx.guild}: {reason}")
        note = ""
    except discord.Forbidden:
        note = " (could not DM them)"
    await ctx.reply(f"⚠️ warned {member.display_name}: {reason}{note}", mention_author=False)


@commands.command(name="file")
async def send_file(ctx: commands.Context, name: str, *, text: str) -> None:
    data = io.BytesIO(text.encode())
    await ctx.reply(
        "here is your file", file=discord.File(data, filename=name), mention_author=False
    )


@commands.command()
async def kick(ctx: commands.Context, member: discord.Member) -> None:
    await member.kick(reason=f"by {ctx.author}")
    await ctx.reply(f"kicked {member.display_name}", mention_author=False)


@app_commands.command(description="Roll dice")
@app_commands.describe(sides="sides per die", count="how many dice")
async def roll(interaction: discord.Interaction, sides: int, count: int = 1) -> None:
    shard = interaction.guild.shard_id if interaction.guild else 0
    await interaction.response.send_message(f"rolling {count}d{sides} in pid {PID} shard {shard}")
    await interaction.followup.send(f"total: {sides * count}")


@app_commands.command(description="Show your coins")
async def balance(interaction: discord.Interaction[TinyBot]) -> None:
    coins = balance_of(interaction.client, interaction.user.id)
    embed = discord.Embed(
        title="Balance",
        description=f"{interaction.user.display_name} has {coins} coins",
        colour=0x2ECC71,
    )
    embed.add_field(name="Wallet", value=str(coins))
    await interaction.response.send_message(embed=embed)


@app_commands.command(description="Claim your daily coins")
async def daily(interaction: discord.Interaction[TinyBot]) -> None:
    bot = interaction.client
    if interaction.user.id in bot.claimed:
        await interaction.response.send_message("❌ Already claimed today", ephemeral=True)
        return
    bot.claimed.add(interaction.user.id)
    bot.coins[interaction.user.id] = balance_of(bot, interaction.user.id) + 50
    await interaction.response.send_message("You claimed 50 coins")


@app_commands.command(description="Give coins to a member")
async def transfer(
    interaction: discord.Interaction[TinyBot], member: discord.Member, amount: int
) -> None:
    bot = interaction.client
    if amount > balance_of(bot, interaction.user.id):
        await interaction.response.send_message("❌ Not enough coins", ephemeral=True)
        return
    bot.coins[interaction.user.id] -= amount
    bot.coins[member.id] = balance_of(bot, member.id) + amount
    await interaction.response.send_message(f"Sent {amount} coins to {member.display_name}")


class Mod(app_commands.Group):
    def __init__(self) -> None:
        super().__init__(name="mod", description="Moderation")

    @app_commands.command(description="Time a member out")
    async def timeout(
        self, interaction: discord.Interaction, member: discord.Member, days: int
    ) -> None:
        try:
            await member.timeout(dt.timedelta(days=days))
        except discord.HTTPException as exc:
            await interaction.response.send_message(
                f"❌ {exc.status} {exc.code}: {exc.text}", ephemeral=True
            )
            return
        await interaction.response.send_message(f"timed out {member.display_name}")

    @app_commands.command(description="Ban a member")
    async def ban(
        self, interaction: discord.Interaction, member: discord.Member, reason: str = "no reason"
    ) -> None:
        try:
            await member.ban(reason=reason)
        except discord.HTTPException as exc:
            await interaction.response.send_message(
                f"❌ {exc.status} {exc.code}: {exc.text}", ephemeral=True
            )
            return
        await interaction.response.send_message(f"banned {member.display_name}: {reason}")


class ClickView(discord.ui.View):
    @discord.ui.button(label="Click me", custom_id="tiny:click")
    async def click(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(
            content=f"clicked by {interaction.user.name}", view=None
        )


@app_commands.command(description="A message with a button")
async def buttons(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("press the button", view=ClickView())


@app_commands.command(description="Defer, then answer")
async def slow(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    await interaction.followup.send("done after defer")


@app_commands.command(description="Never answers (for console tests of Ctrl-C)")
async def never(interaction: discord.Interaction) -> None:
    return


@app_commands.command(description="DM a member")
async def dm(interaction: discord.Interaction, member: discord.Member, text: str) -> None:
    try:
        await member.send(text)
    except discord.Forbidden as exc:
        await interaction.response.send_message(
            f"❌ Cannot DM {member.name} ({exc.code})", ephemeral=True
        )
        return
    await interaction.response.send_message(f"sent a DM to {member.display_name}", ephemeral=True)


class Feedback(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[Feedback] = discord.ui.TextInput(
        label="Your feedback", custom_id="tiny:feedback"
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("thanks", ephemeral=True)


@app_commands.command(description="Open a feedback form")
async def feedback(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(Feedback())


async def start_bot(
    rest_base: str, gateway_url: str, *, ready_timeout: float = 30.0, **options: Any
) -> TinyBot:
    """Point discord.py at a sandbox, start a TinyBot in this loop and wait for on_ready."""
    point_discord_at(rest_base, gateway_url)
    options.setdefault("guild_ready_timeout", 0.2)
    bot = TinyBot(**options)
    await bot.login(SANDBOX_TOKEN)
    bot.connection_task = asyncio.create_task(bot.connect(reconnect=True))
    await asyncio.wait_for(bot.wait_until_ready(), ready_timeout)
    return bot


async def factory(server: Any, fresh: bool = True) -> TinyBot:
    """Bot factory for ``console_main``: a TinyBot connected to ``server`` (always fresh)."""
    return await start_bot(server.rest_base, server.gateway_url)


async def _main(args: argparse.Namespace) -> None:
    base = args.url.rstrip("/")
    bot = await start_bot(
        base + "/api/v10",
        base.replace("http", "ws", 1) + "/",
        shard_count=args.shard_count,
        shard_ids=args.shard_ids,
        identify_delay=args.identify_delay,
    )
    print(f"READY {PID} {' '.join(map(str, args.shard_ids or []))}", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # run until the test closes our stdin
    await bot.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--shard-count", type=int, default=None)
    parser.add_argument("--shard-ids", type=int, nargs="*", default=None)
    parser.add_argument("--identify-delay", type=float, default=0.0)
    asyncio.run(_main(parser.parse_args()))
