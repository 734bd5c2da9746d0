"""guildbot: a sharded Discord community bot (economy, levels, moderation)."""
