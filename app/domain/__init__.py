"""The rules of the economy, levels, moderation and guild settings; no Discord in here."""
