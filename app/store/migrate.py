"""Applying the Alembic migrations: `greenlight db upgrade`, `serve` start-up, and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.store.db import ensure_sqlite_directory, is_sqlite

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (synchronous; runs its own loop)."""
    if is_sqlite(database_url):
        ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)
