"""Audit rows written in batches off the request path: one commit for many requests, not one each.

A commit per proxied call is an fsync per call; on SQLite that alone capped signvault near 140
requests a second. Rows wait at most `interval_s` in a bounded queue; a full queue drops rows,
counted and logged, rather than letting a slow database hold up trading. Shutdown flushes.

On SQLite, each slice is one multi-row INSERT sent straight to the driver's thread. Python's
sqlite3 gives up the GIL around every statement step, an executemany is a step per row, and each
of SQLAlchemy's calls is a round trip to that thread: with the event loop busy, each waited for
the GIL, the writer managed ~540 rows/s against 3,000-6,000 requests/s in bench/, and its queue
grew to 80,000 rows (50 MB, heading for dropped rows). Now it peaks at a few thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app import metrics
from app.audit.models import AuditEvent

log = logging.getLogger("signvault.audit")

SLICE = 512  # rows per slice: preparing them takes ~3 ms of the event loop, which runs between slices
_TABLE = AuditEvent.__table__
_COLUMNS = [column for column in _TABLE.columns if column.name != "id"]


class AuditWriter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, interval_s: float = 0.2,
                 max_batch: int = 5000, max_queue: int = 100_000) -> None:
        self._sessionmaker = sessionmaker
        self._interval_s = interval_s
        self._max_batch = max_batch
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pending = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def submit(self, row: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(row)
            self._pending.set()
        except asyncio.QueueFull:
            metrics.AUDIT_DROPPED.inc()
            log.error("audit queue full: a row was dropped (request %s)", row.get("request_id"))

    async def flush(self) -> None:
        """Write everything queued so far (the audit API calls this to read its own writes)."""
        async with self._lock:
            while not self._queue.empty():
                await self._write(self._drain())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def _drain(self) -> list[dict[str, Any]]:
        rows = []
        while len(rows) < self._max_batch and not self._queue.empty():
            rows.append(self._queue.get_nowait())
        return rows

    async def _run(self) -> None:
        # Rows stay in the queue until written, so a flush never misses one that is "in hand".
        while True:
            await self._pending.wait()
            await asyncio.sleep(self._interval_s)  # let a batch gather
            self._pending.clear()
            await self.flush()

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            async with self._sessionmaker() as session, session.begin():
                connection = await session.connection()
                # One commit per batch, in slices, so no request waits long behind the writer.
                for start in range(0, len(rows), SLICE):
                    await _insert(connection, rows[start:start + SLICE])
        except Exception as exc:  # the responses are long gone; keep serving, say what was lost
            metrics.AUDIT_DROPPED.inc(len(rows))
            log.error("%d audit rows not written: %s", len(rows), type(exc).__name__)


async def _insert(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    dialect = connection.dialect
    if dialect.name != "sqlite":
        await connection.execute(insert(_TABLE), rows)  # asyncpg pipelines an executemany
        return
    head, values, columns = _sqlite_insert(dialect)
    # The aiosqlite connection under the session's transaction: one trip to its thread per statement.
    driver = (await connection.get_raw_connection()).driver_connection
    done = 0
    for size in _power_of_two_sizes(len(rows)):
        # Row counts are powers of two: each connection's prepared-statement cache then holds at
        # most ten shapes. One per count up to the slice size grew it by tens of megabytes.
        chunk = rows[done:done + size]
        done += size
        params = [convert(row.get(name)) for row in chunk for name, convert in columns]
        cursor = await driver.execute(head + ", ".join([values] * size), params)  # type: ignore[union-attr]
        await cursor.close()


def _power_of_two_sizes(count: int) -> list[int]:
    """e.g. 13 -> [8, 4, 1]."""
    return [1 << bit for bit in range(count.bit_length() - 1, -1, -1) if count >> bit & 1]


@functools.cache
def _sqlite_insert(dialect: Dialect) -> tuple[str, str, list[tuple[str, Any]]]:
    """SQLAlchemy's own one-row INSERT, cut into `INSERT ... VALUES ` and `(?, ...)` to repeat per
    row, with each placeholder's column and bind conversion (UTC datetimes as text, and so on)."""
    compiled = insert(_TABLE).compile(dialect=dialect, column_keys=[column.name for column in _COLUMNS])
    head, keyword, values = str(compiled).partition(" VALUES ")
    convert = {column.name: column.type.bind_processor(dialect) or _same for column in _COLUMNS}
    return head + keyword, values, [(name, convert[name]) for name in compiled.positiontup or ()]


def _same(value: Any) -> Any:
    return value
