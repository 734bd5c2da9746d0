import subprocess
import sys

import pytest

from app.config import Settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("sqlite://") and not settings.is_postgres
    assert settings.redis_url is None and settings.discord_token is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("TRANSFER_MAX", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("DB_POOL_MAX", "many"),
    ],
)
def test_invalid_setting_fails_with_one_line_naming_it(name: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from app.config import get_settings; get_settings()"],
        env={"PATH": "/usr/bin:/bin", name: value},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"invalid setting {name}:")
