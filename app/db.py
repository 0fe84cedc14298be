"""The async engine, the per-request transaction, and the declarative base every model shares."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, Table, event, make_url
from sqlalchemy.engine import URL, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READONLY = "signvault_readonly"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements. SQLAlchemy types `__table__` as any FROM clause (a
    class may be mapped to a join or a select); every model here is mapped to a table."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        # SQLite keeps the wall-clock text and drops the offset, so compare everything in UTC.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def _create_private_sqlite_file(url: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask, usually 0644)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def sqlite_file(url: URL) -> str | None:
    """The file a SQLite URL names; None for other databases, in-memory ones and `file:` URIs,
    which a second connection would not reach in the same way."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def create_engine(url: str, *, timeout_s: float | None = None) -> AsyncEngine:
    """`timeout_s` bounds, on PostgreSQL, connecting, the wait for a pooled connection and each
    statement: a database that stops answering then fails requests (503) instead of holding them for
    the kernel's TCP timeout. None for work that may rightly take long (migrations, the CLI)."""
    # hide_parameters: a failed INSERT must never print the ciphertext or token hash it carried.
    kwargs: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
        _create_private_sqlite_file(url)
    elif timeout_s is not None and make_url(url).get_driver_name() == "asyncpg":
        kwargs["pool_timeout"] = timeout_s
        kwargs["connect_args"] = {"timeout": timeout_s, "command_timeout": timeout_s}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _serialise_sqlite_writers(engine.sync_engine)
    return engine


def create_thread_engine(path: str) -> Engine:
    """A synchronous engine on the app's SQLite file, for a thread that runs whole transactions in one
    hand-off from the event loop (app/idempotency/store.py); the same pragmas and IMMEDIATE begins."""
    engine = sqlalchemy.create_engine(URL.create("sqlite", database=path), hide_parameters=True,
                                      connect_args={"timeout": 30})
    _serialise_sqlite_writers(engine)
    return engine


def _serialise_sqlite_writers(engine: Engine) -> None:
    """Begin every SQLite transaction IMMEDIATE, so two writers queue instead of failing with 'locked'.

    With the default deferred BEGIN, two transactions that both read and then write deadlock and
    one fails at once regardless of the busy timeout (two concurrent rotations would see a 500).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Read-only sessions (see create_readonly_sessionmaker) must not queue behind writers.
        readonly = connection.get_execution_options().get(READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_readonly_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Short lookups on the hot path: they never take SQLite's write lock, and are never held open
    across a call to an exchange (a pooled connection idle in a transaction is a pool slot lost)."""
    return async_sessionmaker(engine.execution_options(**{READONLY: True}), expire_on_commit=False)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back if it raises."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a 201 always means the row is durable.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
