"""Idempotency-Key bookkeeping: claim a key, replay its answer, or say why not.

The claim is its own committed transaction, so a concurrent duplicate sees it at once (409). The
answer is stored once the request has gone to the exchange, including a 502/504 whose outcome is
unknown, so a retry can never send a second order. A request signvault refused before sending
releases its key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.errors import Conflict, InvalidInput, ProblemError
from app.idempotency.models import IdempotencyRecord

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
KEEP_FOR = timedelta(hours=24)


class IdempotencyKeyReused(InvalidInput):
    slug, title = "idempotency-key-reused", "The Idempotency-Key was used for a different request"


class IdempotencyKeyInFlight(Conflict):
    slug, title = "idempotency-key-in-flight", "A request with this Idempotency-Key is still in flight"


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
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
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def claim(self, client_id: str, key: str, print_: str) -> StoredAnswer | None:
        """None: the key is ours, go ahead. A StoredAnswer: replay it. Raises for a reuse or a duplicate."""
        now = utcnow()
        try:
            async with self._sessionmaker() as session, session.begin():
                await session.execute(delete(IdempotencyRecord).where(
                    IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key,
                    IdempotencyRecord.created_at < now - KEEP_FOR))
                session.add(IdempotencyRecord(client_id=client_id, key=key, fingerprint=print_, created_at=now))
            return None
        except IntegrityError:
            pass
        async with self._sessionmaker() as session:
            record = await session.scalar(select(IdempotencyRecord).where(
                IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key))
        if record is None:  # released between our insert and this read: the caller may try again
            raise IdempotencyKeyInFlight("the key was just released; retry")
        if record.fingerprint != print_:
            raise IdempotencyKeyReused("this Idempotency-Key was first used for a different request")
        if record.completed_at is None:
            raise IdempotencyKeyInFlight("the first request with this key has not finished; retry later")
        return StoredAnswer(record.status or 500, [(k, v) for k, v in record.headers or []], record.body or b"")

    async def complete(self, client_id: str, key: str, answer: StoredAnswer) -> None:
        async with self._sessionmaker() as session, session.begin():
            record = await session.get(IdempotencyRecord, (client_id, key))
            if record is not None:
                record.completed_at = utcnow()
                record.status = answer.status
                record.headers = [[k, v] for k, v in answer.headers]
                record.body = answer.body

    async def release(self, client_id: str, key: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key,
                IdempotencyRecord.completed_at.is_(None)))


def problem_answer(exc: ProblemError) -> StoredAnswer:
    problem = exc.to_problem().model_dump_json(exclude_none=True).encode()
    return StoredAnswer(exc.status, [("content-type", "application/problem+json")], problem)
