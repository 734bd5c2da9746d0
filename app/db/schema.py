"""Which migrations a PostgreSQL database needs.

The files shipped with the code, and what a database that applied some of them still lacks.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from app.ops.exits import Exit, Fatal

#: The aerich migrations, package data of app.db (MIGRATIONS_DIR overrides the place).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The query for the migrations a database applied (aerich's table).
APPLIED_QUERY = "SELECT version FROM aerich WHERE app = 'models'"


def shipped_migrations(location: Path) -> list[str]:
    """The migration files in `location` ("N_..._name.py", as aerich names them), in order.

    `Fatal` when there are none (a wrong MIGRATIONS_DIR, or a build that left them out).
    """
    found = [
        path.name
        for path in (location / "models").glob("*.py")
        if path.stem.split("_", 1)[0].isdigit() and "_" in path.stem
    ]
    if not found:
        raise Fatal(
            f"no migrations in {location / 'models'} (MIGRATIONS_DIR): nothing to apply",
            Exit.NO_MIGRATIONS,
        )
    return sorted(found, key=lambda name: int(name.split("_", 1)[0]))


def schema_problem(applied: Collection[str] | None, shipped: list[str]) -> str | None:
    """Why a database that applied `applied` is not at the head of `shipped` (None: it is).

    `applied` is None when the database has no migration table at all.

    A database that also has migrations this code does not know (a newer release migrated it
    first, as a rolling update does) counts as at the head.
    """
    if applied is None:
        return "it has no tables: run `python -m app migrate` first"
    missing = [name for name in shipped if name not in applied]
    if missing:
        return (
            f"it lacks {len(missing)} migration(s) ({', '.join(missing)}):"
            " run `python -m app migrate` first"
        )
    return None
