"""Pages of embeds turned with buttons; only the member who asked may turn them."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord
from discord.ext import commands

from app.bot.privacy import send_private

log = logging.getLogger(__name__)


class PageSource(Protocol):
    """Builds page `index` (0-based) and says whether another page follows."""

    async def page(self, index: int) -> tuple[discord.Embed, bool]:
        """(the embed of page `index`, whether a page follows it)."""
        ...


class Paginator(discord.ui.View):
    """Previous / next buttons over a PageSource."""

    def __init__(self, source: PageSource, owner_id: int, timeout: float = 180.0) -> None:
        super().__init__(timeout=timeout)
        self.source = source
        self.owner_id = owner_id
        self.index = 0
        self.has_next = False
        self.message: discord.Message | None = None

    async def start(
        self, ctx: commands.Context[Any], index: int = 0, *, private: str | None = None
    ) -> None:
        """Send page `index`; buttons only when there is somewhere to go.

        With `private` (what the pages hold, e.g. "the cases"), the pages are staff data and go
        to the caller alone (app.bot.privacy.send_private).
        """
        embed, self.has_next = await self.source.page(index)
        self.index = index
        self._sync_buttons()
        view = self if (self.has_next or index > 0) else None
        if private is not None:
            self.message = await send_private(ctx, private, embed=embed, view=view)
        else:
            self.message = await ctx.send(embed=embed, view=view or discord.utils.MISSING)
        if view is None:
            self.stop()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = not self.has_next

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the member who ran the command turns its pages."""
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            "Only the member who ran this command can turn its pages.", ephemeral=True
        )
        return False

    async def _show(self, interaction: discord.Interaction, index: int) -> None:
        embed, self.has_next = await self.source.page(index)
        self.index = index
        self._sync_buttons()
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(
        self, interaction: discord.Interaction, button: discord.ui.Button[Paginator]
    ) -> None:
        """Turn back one page."""
        await self._show(interaction, max(self.index - 1, 0))

    @discord.ui.button(label="Next", style=discord.ButtonStyle.primary)
    async def next(
        self, interaction: discord.Interaction, button: discord.ui.Button[Paginator]
    ) -> None:
        """Turn forward one page."""
        await self._show(interaction, self.index + 1)

    async def on_timeout(self) -> None:
        """Grey the buttons out once nobody can use them any more."""
        if self.message is None:
            return
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        try:
            await self.message.edit(view=self)
        except (discord.HTTPException, RuntimeError):  # RuntimeError: the bot closed meanwhile
            log.debug("could not disable paginator buttons", exc_info=True)

    async def on_error(
        self,
        interaction: discord.Interaction,
        error: Exception,
        item: discord.ui.Item[Any],
    ) -> None:
        """A failed page turn is logged and answered, never raised."""
        log.error("page turn failed (interaction %s)", interaction.id, exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send("I could not turn the page.", ephemeral=True)
            else:
                await interaction.response.send_message(
                    "I could not turn the page.", ephemeral=True
                )
        except discord.HTTPException:
            pass
