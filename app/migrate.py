"""Bring the schema to alembic head, safely when several replicas start at once.

A worker whose database is already at head never imports alembic, which stays ~10 MB of its memory
for as long as it runs: most starts are restarts. HEAD names the newest migration; a test holds it
to alembic's own answer, so adding a migration without updating it fails there, not in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Arbitrary constant naming signvault's migration lock among PostgreSQL advisory locks.
MIGRATION_LOCK_ID = 0x5157_4C54
HEAD = "0003"  # migrations/versions: the newest revision


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return config


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))] == [HEAD]


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together queue here instead of racing to create the same tables.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    if _at_head(connection):
        return
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
