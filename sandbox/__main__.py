"""``python -m sandbox serve ...`` and ``python -m sandbox console --bot-factory M:F``."""

from __future__ import annotations

import importlib
import sys

from sandbox.cli import BotFactory, console_main, serve_main


def _factory(spec: str) -> BotFactory:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "factory")


def main(argv: list[str]) -> int:
    """Dispatch to serve or console (which needs ``--bot-factory module:function``)."""
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    if argv[:1] == ["console"] and "--bot-factory" in argv:
        at = argv.index("--bot-factory")
        rest = argv[1:at] + argv[at + 2 :]
        return console_main(rest, _factory(argv[at + 1]))
    print(
        "usage: python -m sandbox serve [options] | console --bot-factory MODULE:FUNC [options]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
