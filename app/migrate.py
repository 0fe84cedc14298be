"""Bring the schema to alembic head, safely when several replicas start at once.

A worker never imports alembic, which would stay ~10 MB of its memory for as long as it runs: at
head it has nothing to do (most starts are restarts), and otherwise a child process migrates and
exits (`python -m app.migrate`). HEAD names the newest migration; a test holds it to alembic's own
answer, so adding a migration without updating it fails there, not in production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("signvault")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Arbitrary constant naming signvault's migration lock among PostgreSQL advisory locks.
MIGRATION_LOCK_ID = 0x5157_4C54
HEAD = "0004"  # migrations/versions: the newest revision


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
    """Migrate in this process (the `migrate` command, and the child below)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


class MigrationFailed(RuntimeError):
    """The child process could not bring the schema to head; the message is its one-line reason."""


async def ensure_at_head(engine: AsyncEngine, *, in_child: bool | None = None) -> None:
    """What a starting worker calls. When the schema is behind, a child process migrates it, unless
    this process holds alembic already (a test run, a command) or its database lives only in this
    process's memory; `in_child` decides instead."""
    async with engine.connect() as connection:
        if await connection.run_sync(_at_head):
            return
    if in_child is None:
        in_child = "alembic" not in sys.modules and not _in_memory(engine.url)
    if in_child:
        await _upgrade_in_child(engine.url)
    else:
        await upgrade_to_head(engine)
    log.info("the database schema is at revision %s", HEAD)


def _in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (url.database in (None, "", ":memory:")
                                                   or url.query.get("mode") == "memory")


async def _upgrade_in_child(url: URL) -> None:
    # The child imports this very `app` package: -P keeps the working directory (where any folder
    # named app could sit) off its path, and PYTHONPATH names where this one lives.
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    # The URL goes through stdin: a password in argv would show in every `ps`.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "app.migrate", env={**os.environ, "PYTHONPATH": path},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await child.communicate(url.render_as_string(hide_password=False).encode() + b"\n")
    if child.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1][:300] if lines else f"exit status {child.returncode}"
        if url.password:  # the child prints the driver's words; a driver could still echo the URL
            reason = reason.replace(str(url.password), "***")
        raise MigrationFailed(f"migrating the database to revision {HEAD} failed: {reason}")


def _child_main() -> int:
    """`python -m app.migrate`: the database URL on stdin; on failure one line on stderr (the
    exception's name and the driver's first line, without bound parameters), exit 1."""
    from app.cli.runtime import database_problem
    from app.db import create_engine

    async def run(url: str) -> None:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run(sys.stdin.readline().strip()))
    except Exception as exc:  # reported to the parent as one line, never raised past it
        print(f"{type(exc).__name__}: {database_problem(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main())
