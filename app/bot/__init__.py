"""The Discord side: the bot client, its cogs, checks, rendering and shard ownership."""
