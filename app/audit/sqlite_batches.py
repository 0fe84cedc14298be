"""Audit batches into a SQLite file from a thread of their own: one hand-off per batch.

Through aiosqlite a batch took ~14 trips between the event loop and the driver's thread (pool
ping, BEGIN, the INSERTs, their cursors, COMMIT), and each trip made the two threads trade the
GIL: at a fixed 1,000 requests/s in bench/ the worker spent 676 µs of CPU per proxied request,
and 564 µs with this module. Here the loop turns the rows into statement
parameters, a slice at a time, and hands them over once; the thread runs the transaction on a
connection of its own. It holds the GIL only between SQLite calls, which release it: Python work
in the thread would make the loop wait for the GIL, up to the 5 ms switch interval at a time.

Rows on time go to a thread that runs only when the loop's thread leaves the core idle (Linux's
SCHED_IDLE), one slice per transaction. At niceness 10 the writer still took its share of a
shared core in turns while requests waited: in bench/, 64 bots against a 20 ± 10 ms exchange,
one worker on one core, 4 interleaved runs, signvault's added p50 was 4.9-5.6 ms that way and
3.9-4.9 ms this way (p99 9.8-10.6 -> 6.0-9.3 ms). A busy loop starves such a thread, though
(whole batches at idle priority, 30 s saturated: 100,000 rows behind), and a starved transaction
would hold SQLite's write lock: so a slice is the most it holds at once, and rows that have
waited LATE_S go to a second thread at niceness 10, all in one transaction. Saturated for 30 s,
the writer was then 360 rows behind at the end, RSS 131 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Dialect

from app.audit.models import AuditEvent
from app.db import table_of

# Rows per statement at most, on any database. A slice holds the event loop while it is prepared,
# and the thread holds the GIL while it binds one: in bench/, one connection's p99 was ~2.4 ms with
# 512-row slices and ~1.5 ms with 128-row ones, at the same throughput.
SLICE = 128
_TABLE = table_of(AuditEvent)
_COLUMNS = [column for column in _TABLE.columns if column.name != "id"]
BUSY_TIMEOUT_S = 30  # as the app's engine: wait for another writer rather than fail
# The catch-up thread's scheduling niceness (Linux: per thread), and the idle thread's where
# SCHED_IDLE is missing. On a core shared with the event loop, SQLite writing a batch at niceness 0
# kept the loop's thread off the core for milliseconds. In bench/, one worker on one core: p99 at
# one connection ~3.0 -> ~2.4 ms, at 4,000 req/s ~4.3 -> ~2.9 ms.
BACKGROUND_NICENESS = 10
# Rows that have waited this long are late: the idle thread is not getting the core.
LATE_S = 0.5


class SqliteBatches:
    """Writes each batch in one transaction, in one of two threads that each own a connection:
    `idle` for rows on time, `catch_up` for late ones."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._statement = _statement(dialect)
        self.idle = ThreadPoolExecutor(1, thread_name_prefix="signvault-audit", initializer=_at_idle_priority)
        self.catch_up = ThreadPoolExecutor(1, thread_name_prefix="signvault-audit-catch-up",
                                           initializer=_in_background)
        self._local = threading.local()  # each thread's connection, opened, used and closed there

    async def write(self, rows: list[dict[str, Any]], *, late: bool = False) -> None:
        """`rows` in one transaction: at idle priority, or at niceness 10 when `late`."""
        head, values, in_order, conversions = self._statement
        statements = []
        for start in range(0, len(rows), SLICE):
            chunk, done = rows[start:start + SLICE], 0
            for size in power_of_two_sizes(len(chunk)):
                # Row counts are powers of two: the connection's prepared-statement cache then holds
                # at most ten shapes. One per count grew it by tens of megabytes.
                params: list[Any] = []
                for row in chunk[done:done + size]:
                    row_params = list(in_order(row))
                    for index, convert in conversions:
                        row_params[index] = convert(row_params[index])
                    params += row_params
                statements.append((head + ", ".join([values] * size), params))
                done += size
            await asyncio.sleep(0)  # requests run between slices
        executor = self.catch_up if late else self.idle
        await asyncio.get_running_loop().run_in_executor(executor, self._execute, statements)

    async def close(self) -> None:
        for executor in (self.idle, self.catch_up):
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
            executor.shutdown(wait=True)

    def _execute(self, statements: list[tuple[str, list[Any]]]) -> None:
        connection = getattr(self._local, "connection", None) or self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                connection.execute(sql, params)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:  # not when BEGIN itself failed (locked for BUSY_TIMEOUT_S)
                connection.execute("ROLLBACK")
            raise

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the transactions are the BEGIN IMMEDIATE and COMMIT above.
        connection: sqlite3.Connection = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._local.connection = connection
        return connection

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _at_idle_priority() -> None:
    """Run this thread only when no other thread wants the core; where that is not possible, niced."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed
        _in_background()


def _in_background() -> None:
    """Lower this thread's scheduling priority; where threads cannot be reniced, run as is."""
    with contextlib.suppress(AttributeError, OSError):  # no setpriority, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


def power_of_two_sizes(count: int) -> list[int]:
    """e.g. 13 -> [8, 4, 1]."""
    return [1 << bit for bit in range(count.bit_length() - 1, -1, -1) if count >> bit & 1]


Statement = tuple[str, str, Callable[[dict[str, Any]], tuple[Any, ...]], list[tuple[int, Callable[[Any], Any]]]]


@functools.cache
def _statement(dialect: Dialect) -> Statement:
    """SQLAlchemy's own one-row INSERT, cut into `INSERT ... VALUES ` and `(?, ...)` to repeat per
    row; a row's values in placeholder order; and the conversions some of them need (by position).

    dialect_impl: the conversion SQLAlchemy itself applies. The type's own bind_processor left UTC
    datetimes to sqlite3's default adapter, which stored them with a "+00:00" the ORM's rows lack.
    occurred_at arrives as seconds since the epoch (app/audit/recorder.py): _epoch_text."""
    compiled = insert(_TABLE).compile(dialect=dialect, column_keys=[column.name for column in _COLUMNS])
    head, keyword, values = str(compiled).partition(" VALUES ")
    names = list(compiled.positiontup or ())
    conversions = []
    for index, name in enumerate(names):
        processor = _TABLE.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name == "occurred_at":
            conversions.append((index, _epoch_text(processor)))
        elif processor is not None:
            conversions.append((index, processor))
    return head + keyword, values, itemgetter(*names), conversions


def _epoch_text(processor: Callable[[Any], Any] | None) -> Callable[[float], Any]:
    """Seconds since the epoch as the text SQLAlchemy stores for a UTC datetime on SQLite, without
    building the datetime. Through SQLAlchemy a row's timestamp cost ~20k instructions on the event
    loop (callgrind), ~3% of a proxied request; this ~5k, as rows of one second share its prefix.
    Checked against SQLAlchemy's own text here; should they ever differ, its conversion is used."""
    prefixes: dict[int, str] = {}

    def text(epoch: float) -> str:
        second, micro = divmod(round(epoch * 1_000_000), 1_000_000)
        prefix = prefixes.get(second)
        if prefix is None:
            prefixes.clear()
            prefix = prefixes[second] = time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(second))
        return f"{prefix}{micro:06d}"

    def through_sqlalchemy(epoch: float) -> Any:
        moment = datetime.fromtimestamp(epoch, UTC)
        return processor(moment) if processor is not None else moment

    samples = (0.0, 1767323045.678, 1767323045.000001, 4102444799.999999)
    return text if all(text(s) == through_sqlalchemy(s) for s in samples) else through_sqlalchemy
