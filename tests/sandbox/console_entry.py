"""Test entry point: the sandbox console driving the tiny bot.

python tests/sandbox/console_entry.py --script FILE
"""

import sys

from tiny_bot import factory

from sandbox.cli import console_main

if __name__ == "__main__":
    sys.exit(console_main(sys.argv[1:], factory))
