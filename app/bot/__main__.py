"""`python -m app.bot`: run the bot with settings from the environment (see app.config)."""

from __future__ import annotations

import logging
import sys

from app.bot.runner import run_bot
from app.config import get_settings

if __name__ == "__main__":
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    sys.exit(run_bot(settings))
