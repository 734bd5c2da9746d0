"""What the bot leaves out: it never loads the sandbox (nor test support), and a child bot
process inherits none of the developer's bot settings."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from testsupport.bots import BOT_SETTINGS, REPO, bot_env

APP = REPO / "app"
OUTSIDE = ("sandbox", "testsupport", "bench", "tests")


def loaded_after(imports: str, outside: tuple[str, ...] = OUTSIDE) -> list[str]:
    """The modules of `outside` a fresh interpreter holds after `imports`."""
    code = (
        f"import sys\n{imports}\n"
        f"print(sorted(m for m in sys.modules if any(m == o or m.startswith(o + '.')"
        f" for o in {outside!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip())


def test_the_bot_loads_no_sandbox() -> None:
    assert loaded_after("import app.__main__, app.bot.client, app.bot.runner") == []


def test_the_web_console_loads_neither_discord_nor_the_bot() -> None:
    loaded = loaded_after(
        "import app.web.server, app.web.embedded", (*OUTSIDE, "discord", "app.bot")
    )
    assert loaded == []


def test_the_probe_sees_the_sandbox_when_it_is_loaded() -> None:
    assert "sandbox.server" in loaded_after("import app.bot.runner, sandbox")


def names_of_sandbox(path: Path) -> list[str]:
    """Where a module imports the sandbox package, or names it as a module in a string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules = [node.value] if node.value.startswith("sandbox.") else []
        else:
            continue
        found += [
            f"{path.relative_to(REPO)}:{node.lineno}: {name}"
            for name in modules
            if name == "sandbox" or name.startswith("sandbox.")
        ]
    return found


def test_no_module_of_the_bot_names_the_sandbox() -> None:
    sources = [p for p in APP.rglob("*.py") if p != APP / "__main__.py"]
    assert len(sources) > 20
    assert [hit for path in sources for hit in names_of_sandbox(path)] == []
    assert names_of_sandbox(APP / "__main__.py"), "the scan finds the command line's import"


#: Python code that makes `sandbox` impossible to import, as in the production image.
WITHOUT_SANDBOX = """\
import sys


class NoSandbox:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sandbox":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoSandbox())
"""


def test_without_the_sandbox_the_console_says_so() -> None:
    code = WITHOUT_SANDBOX + "from app.__main__ import main\nsys.exit(main(['sandbox']))\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=bot_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "The sandbox is not installed here" in done.stderr


def test_bot_settings_are_the_settings_model_fields() -> None:
    assert {name.upper() for name in Settings.model_fields} == BOT_SETTINGS
    assert "DATABASE_URL" in BOT_SETTINGS and "LEASE_TTL_S" in BOT_SETTINGS
    # Names map to upper-case variables only while no prefix or alias changes them.
    assert not Settings.model_config.get("env_prefix")
    assert all(
        f.alias is None and f.validation_alias is None for f in Settings.model_fields.values()
    )


def test_a_child_bot_inherits_no_bot_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BOT_SETTINGS:
        monkeypatch.setenv(name, "from the developer")
    monkeypatch.setenv("lease_ttl_s", "1")  # the settings are read case-insensitively
    monkeypatch.setenv("SOMETHING_ELSE", "kept")
    env = bot_env(DATABASE_URL="sqlite://child.sqlite3")
    assert {k for k in env if k.upper() in BOT_SETTINGS} == {"DATABASE_URL"}
    assert env["DATABASE_URL"] == "sqlite://child.sqlite3"
    assert env["SOMETHING_ELSE"] == "kept" and env["PYTHONPATH"] == str(REPO)
