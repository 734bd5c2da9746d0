"""`python -m app.bot`: the same as `python -m app run`."""

from __future__ import annotations

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["run"]))
