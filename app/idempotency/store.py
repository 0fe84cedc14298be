"""Idempotency-Key bookkeeping: claim a key, replay its answer, or say why not.

The claim is its own committed transaction, so a concurrent duplicate sees it at once (409). The
answer is stored once the request has gone to the exchange, including a 502/504 whose outcome is
unknown, so a retry can never send a second order. A request signvault refused before sending, or
could not send for want of a connection, releases its key.

Each step is one transaction, written once as a function of a synchronous Connection, in Core
statements: the ORM's unit of work (identity map, flush, attribute history) cost more than SQLite's
own work. On a SQLite file the whole transaction runs in a thread of its own, in one hand-off from
the event loop; through aiosqlite every driver call was a trip to its thread and back (~32 for a
claim and its completion), and on a 2-core VM a keyed order spent ~8 ms on them: ~190 keyed
orders/s from 64 connections. Other databases run the same function through the async connection
(`run_sync`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_thread_engine, sqlite_file, table_of, utcnow
from app.errors import Conflict, InvalidInput, ProblemError
from app.idempotency.models import IdempotencyRecord

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
KEEP_FOR = timedelta(hours=24)
PURGE_BATCH = 1000  # expired keys deleted per transaction
T = TypeVar("T")
_KEYS = table_of(IdempotencyRecord)


class IdempotencyKeyReused(InvalidInput):
    slug, title = "idempotency-key-reused", "The Idempotency-Key was used for a different request"


class IdempotencyKeyInFlight(Conflict):
    slug, title = "idempotency-key-in-flight", "A request with this Idempotency-Key is still in flight"


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]  # names lowercased, as the proxy answers (app/proxy/upstream.py)
    body: bytes


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(8, "big") + raw)  # length-prefixed: no two splits collide
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise InvalidInput.field("Idempotency-Key", "1 to 128 printable ASCII characters")
    return key


class IdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._async_engine = engine
        sqlite_path = sqlite_file(engine.url)
        self._engine = create_thread_engine(sqlite_path) if sqlite_path else None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="signvault-idempotency") if sqlite_path else None

    async def claim(self, client_id: str, key: str, print_: str) -> StoredAnswer | None:
        """None: the key is ours, go ahead. A StoredAnswer: replay it. Raises for a reuse or a duplicate."""
        return await self._run(functools.partial(_claim, client_id=client_id, key=key, print_=print_))

    async def complete(self, client_id: str, key: str, answer: StoredAnswer) -> None:
        await self._run(functools.partial(_complete, client_id=client_id, key=key, answer=answer))

    async def release(self, client_id: str, key: str) -> None:
        await self._run(functools.partial(_release, client_id=client_id, key=key))

    async def purge_expired(self) -> int:
        """Forget the keys older than KEEP_FOR, answered or not: their bodies would pile up forever.
        A batch per transaction, so claims (on SQLite, queued on the same thread) go on in between."""
        before, purged = utcnow() - KEEP_FOR, 0
        while True:
            batch = await self._run(functools.partial(_purge, before=before, limit=PURGE_BATCH))
            purged += batch
            if batch < PURGE_BATCH:
                return purged

    async def close(self) -> None:
        if self._thread is not None and self._engine is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
            self._thread.shutdown(wait=True)

    async def _run(self, work: Callable[[Connection], T]) -> T:
        if self._thread is None:
            async with self._async_engine.connect() as connection:
                return await connection.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, work)

    def _in_thread(self, work: Callable[[Connection], T]) -> T:
        with self._engine.connect() as connection:  # type: ignore[union-attr]
            return work(connection)


def _claim(connection: Connection, *, client_id: str, key: str, print_: str) -> StoredAnswer | None:
    now = utcnow()
    try:
        with connection.begin():
            connection.execute(delete(_KEYS).where(_KEYS.c.client_id == client_id, _KEYS.c.key == key,
                                                   _KEYS.c.created_at < now - KEEP_FOR))
            connection.execute(insert(_KEYS).values(client_id=client_id, key=key, fingerprint=print_, created_at=now))
        return None
    except IntegrityError:
        pass
    with connection.begin():
        record = connection.execute(select(
            _KEYS.c.fingerprint, _KEYS.c.completed_at, _KEYS.c.status, _KEYS.c.headers, _KEYS.c.body,
        ).where(_KEYS.c.client_id == client_id, _KEYS.c.key == key)).first()
    if record is None:  # released between our insert and this read: the caller may try again
        raise IdempotencyKeyInFlight("the key was just released; retry")
    if record.fingerprint != print_:
        raise IdempotencyKeyReused("this Idempotency-Key was first used for a different request")
    if record.completed_at is None:
        raise IdempotencyKeyInFlight("the first request with this key has not finished; retry later")
    return StoredAnswer(record.status or 500, [(k.lower().encode("latin-1"), _header_bytes(v))
                                               for k, v in record.headers or []], record.body or b"")


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")  # as the proxy stores them since it keeps headers as bytes
    except UnicodeEncodeError:  # stored before, decoded from UTF-8 by httpx: its bytes again
        return value.encode("utf-8", "surrogateescape")


def _complete(connection: Connection, *, client_id: str, key: str, answer: StoredAnswer) -> None:
    with connection.begin():  # a key released or expired meanwhile matches no row: nothing to store
        connection.execute(update(_KEYS).where(_KEYS.c.client_id == client_id, _KEYS.c.key == key).values(
            completed_at=utcnow(), status=answer.status,
            headers=[[k.decode("latin-1"), v.decode("latin-1")] for k, v in answer.headers], body=answer.body))


def _release(connection: Connection, *, client_id: str, key: str) -> None:
    with connection.begin():
        connection.execute(delete(_KEYS).where(_KEYS.c.client_id == client_id, _KEYS.c.key == key,
                                               _KEYS.c.completed_at.is_(None)))


def _purge(connection: Connection, *, before: datetime, limit: int) -> int:
    with connection.begin():
        expired = connection.execute(select(_KEYS.c.client_id, _KEYS.c.key).where(
            _KEYS.c.created_at < before).order_by(_KEYS.c.created_at).limit(limit)).all()
        if expired:
            connection.execute(delete(_KEYS).where(tuple_(_KEYS.c.client_id, _KEYS.c.key).in_(
                [(row.client_id, row.key) for row in expired])))
        return len(expired)


def problem_answer(exc: ProblemError) -> StoredAnswer:
    problem = exc.to_problem().model_dump_json(exclude_none=True).encode()
    return StoredAnswer(exc.status, [(b"content-type", b"application/problem+json")], problem)
