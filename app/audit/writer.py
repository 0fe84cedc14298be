"""Audit rows written in batches off the request path: one commit for many requests, not one each.

A commit per proxied call is an fsync per call; on SQLite that alone capped signvault near 140
requests a second. Rows wait at most `interval_s` in a bounded queue; a full queue drops rows,
counted and logged, rather than letting a slow database hold up trading. Shutdown flushes. The
queue is a deque that only the event loop's thread touches: asyncio.Queue's put and get are
Python code that a row paid twice, ~3 µs on the request's path.

A SQLite file gets its batches through app/audit/sqlite_batches.py, in one hand-off per transaction;
other databases through the app's engine (asyncpg pipelines the executemany).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import metrics
from app.audit.models import AuditEvent
from app.audit.sqlite_batches import LATE_S, SLICE, SqliteBatches
from app.db import sqlite_file, table_of
from app.tasks import stop

log = logging.getLogger("signvault.audit")

_TABLE = table_of(AuditEvent)


class AuditWriter:
    def __init__(self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], *,
                 interval_s: float = 0.2, max_batch: int = 5000, max_queue: int = 100_000,
                 idle_priority: bool = True) -> None:
        self._sessionmaker = sessionmaker
        path = sqlite_file(engine.url)
        self._sqlite = SqliteBatches(path, engine.dialect) if path else None
        self._idle_priority = idle_priority  # SQLite: rows on time wait for an idle core
        self._interval_s = interval_s
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._rows: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pending = asyncio.Event()  # set when a row arrives in an empty queue

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def submit(self, row: dict[str, Any]) -> None:
        rows = self._rows
        if len(rows) >= self._max_queue:
            metrics.AUDIT_DROPPED.inc()
            log.error("audit queue full: a row was dropped (request %s)", row.get("request_id"))
            return
        rows.append(row)
        # A queue that held rows already has its flush coming: every flush drains the queue empty.
        if len(rows) == 1:
            self._pending.set()

    async def flush(self) -> None:
        """Write everything queued so far (the audit API calls this to read its own writes).

        Only what was queued when it began: rows that arrive while it writes wait for the next
        batch. Draining until the queue stayed empty wrote a transaction every time the writer's
        thread got the core, so at moderate load batches held two or three rows (377 transactions
        for 1,006 requests on one connection), each a hand-off from the event loop and a commit."""
        async with self._lock:
            due = len(self._rows)
            while due > 0:
                rows = self._drain(due)
                due -= len(rows)
                await self._write(rows)

    async def close(self) -> None:
        await stop(self._task)
        await self.flush()  # after a flush still in progress (it holds the lock), what is queued
        while self._rows:  # shutdown: until the last row is in
            await self.flush()
        if self._sqlite is not None:
            await self._sqlite.close()

    def _drain(self, due: int) -> list[dict[str, Any]]:
        """The oldest `due` rows (at most a batch), taken off the queue."""
        queued, size = self._rows, min(due, self._max_batch)
        if size == len(queued):
            rows = list(queued)
            queued.clear()
            return rows
        return [queued.popleft() for _ in range(size)]

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            await asyncio.sleep(self._interval_s)  # let a batch gather
            self._pending.clear()
            # Shielded from close()'s cancel: the rows a flush has taken off the queue are only in its
            # hands until written, and cancelling it mid-write lost them (found by a flaky test).
            await asyncio.shield(self.flush())
            if self._rows:  # arrived while it wrote, some into a queue not yet empty: the next batch
                self._pending.set()

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._sqlite is None:
            await self._committed(rows, late=False)
            return
        # On time: a slice per transaction, at idle priority. Late (the oldest row not yet written
        # has waited LATE) or without idle priority: the rest at once, at niceness 10.
        while rows:
            late = not self._idle_priority or time.time() - rows[0]["occurred_at"] > LATE_S
            part, rows = (rows, []) if late else (rows[:SLICE], rows[SLICE:])
            await self._committed(part, late=late)

    async def _committed(self, rows: list[dict[str, Any]], *, late: bool) -> None:
        """`rows` in one transaction, or counted and logged as lost."""
        try:
            if self._sqlite is not None:
                await self._sqlite.write(rows, late=late)
                return
            async with self._sessionmaker() as session, session.begin():
                connection = await session.connection()
                # One commit per batch, in slices, so no request waits long behind the writer.
                for start in range(0, len(rows), SLICE):
                    await connection.execute(insert(_TABLE), [_timed(row) for row in rows[start:start + SLICE]])
        except Exception as exc:  # the responses are long gone; keep serving, say what was lost
            metrics.AUDIT_DROPPED.inc(len(rows))
            log.error("%d audit rows not written: %s", len(rows), type(exc).__name__)


def _timed(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its occurred_at (seconds since the epoch, app/audit/recorder.py) as a UTC datetime."""
    return {**row, "occurred_at": datetime.fromtimestamp(row["occurred_at"], UTC)}
