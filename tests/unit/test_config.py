import subprocess
import sys

import pytest
import uvloop

from app.config import Settings
from app.ops.event_loop import loop_factory


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("sqlite://") and settings.is_sqlite
    assert settings.redis_url is None and settings.discord_token is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("TRANSFER_MAX", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("DB_POOL_MAX", "many"),
        ("EVENT_LOOP", "uvlop"),
    ],
)
def test_invalid_setting_fails_with_one_line_naming_it(name: str, value: str) -> None:
    assert_one_line_naming(name, {name: value})


@pytest.mark.parametrize(
    ("name", "env", "says"),
    [
        ("DB_POOL_MIN", {"DB_POOL_MIN": "5", "DB_POOL_MAX": "2"}, "above DB_POOL_MAX (2)"),
        ("SHARD_IDS", {"SHARD_COUNT": "4", "SHARD_IDS": "[1,4]"}, "4 outside SHARD_COUNT=4"),
        ("SHARD_IDS", {"SHARD_COUNT": "4", "SHARD_IDS": "[-1]"}, "-1 outside SHARD_COUNT=4"),
        ("SHARD_IDS", {"SHARD_COUNT": "4", "SHARD_IDS": "[1,1]"}, "names a shard twice"),
        ("SHARD_IDS", {"SHARD_COUNT": "4", "SHARD_IDS": "[]"}, "names no shard"),
        ("SHARD_IDS", {"SHARD_IDS": "[0]"}, "needs a numeric SHARD_COUNT"),
        ("SHARD_IDS", {"SHARD_COUNT": "auto", "SHARD_IDS": "[0]"}, "numeric SHARD_COUNT"),
        ("SHARDS_PER_POD", {"SHARDS_PER_POD": "2"}, "needs a numeric SHARD_COUNT"),
    ],
)
def test_settings_that_contradict_each_other_fail_with_one_line(
    name: str, env: dict[str, str], says: str
) -> None:
    line = assert_one_line_naming(name, env)
    assert says in line


def assert_one_line_naming(name: str, env: dict[str, str]) -> str:
    """Loading the settings from `env` exits 2 with one line naming `name`; that line."""
    result = subprocess.run(
        [sys.executable, "-c", "from app.config import get_settings; get_settings()"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"invalid setting {name}:"), result.stderr
    return lines[0]


def test_consistent_shard_settings_pass() -> None:
    settings = Settings(_env_file=None, shard_count=4, shard_ids=[0, 3])
    assert settings.shard_ids == [0, 3]


def test_the_event_loop_setting_picks_the_loop() -> None:
    assert loop_factory(Settings(_env_file=None, event_loop="asyncio").event_loop) is None
    assert loop_factory(Settings(_env_file=None).event_loop) is uvloop.new_event_loop
