"""A starting worker's schema is brought to head by a child process, on SQLite and PostgreSQL: alone,
with replicas starting together, and with a clear one-line reason when it cannot."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url, text

from app.db import create_engine
from app.migrate import HEAD, MigrationFailed, ensure_at_head
from tests.conftest import _asyncpg_dsn

CANARY_PASSWORD = "pw-canary-7f3a"  # trust auth ignores it; it must not reach a message


def _on_postgres(sql: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(os.environ["SIGNVAULT_TEST_DATABASE_URL"]))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all; on PostgreSQL one of its own, its URL carrying a password."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")  # skips or fails as the suite's PostgreSQL tests do
    name = f"signvault_migrate_{uuid.uuid4().hex[:12]}"
    _on_postgres(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name, password=CANARY_PASSWORD).render_as_string(hide_password=False)
    finally:
        _on_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _revision(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [row[0] for row in await connection.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        await engine.dispose()


async def _ensure(url: str) -> None:
    engine = create_engine(url)
    try:
        await ensure_at_head(engine, in_child=True)
    finally:
        await engine.dispose()


def test_a_child_process_brings_an_empty_database_to_head(empty_database_url: str) -> None:
    asyncio.run(_ensure(empty_database_url))
    assert asyncio.run(_revision(empty_database_url)) == [HEAD]
    asyncio.run(_ensure(empty_database_url))  # at head: nothing to do, and nothing fails
    assert asyncio.run(_revision(empty_database_url)) == [HEAD]


@pytest.mark.postgres
@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)  # replicas share PostgreSQL
def test_replicas_starting_together_migrate_once(empty_database_url: str) -> None:
    async def three() -> None:
        await asyncio.gather(*(_ensure(empty_database_url) for _ in range(3)))

    asyncio.run(three())  # the advisory lock queues them: none trips over another's tables
    assert asyncio.run(_revision(empty_database_url)) == [HEAD]


def test_a_failed_migration_says_why_in_one_line_without_the_password(empty_database_url: str) -> None:
    async def from_the_future() -> None:
        engine = create_engine(empty_database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                await connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
        finally:
            await engine.dispose()

    asyncio.run(from_the_future())
    with pytest.raises(MigrationFailed) as failed:
        asyncio.run(_ensure(empty_database_url))
    message = str(failed.value)
    assert message.startswith(f"migrating the database to revision {HEAD} failed: ")
    assert "9999" in message and "\n" not in message
    assert CANARY_PASSWORD not in message
    assert asyncio.run(_revision(empty_database_url)) == ["9999"]  # left as it was


def test_the_child_runs_this_app_not_a_folder_named_app_where_it_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoy = tmp_path / "elsewhere" / "app"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the wrong app was imported')\n")
    monkeypatch.chdir(decoy.parent)
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    asyncio.run(_ensure(url))
    assert asyncio.run(_revision(url)) == [HEAD]
