"""Every query on clients."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.clients.models import Client


def _with_credentials() -> Select[Client]:
    return select(Client).options(selectinload(Client.credentials))


async def find(session: AsyncSession, ref: str, *, for_update: bool = False) -> Client | None:
    """By id first, then by name: a name that happens to equal another client's id must not win.
    `for_update`: concurrent writes to the client wait for this transaction, and its credentials
    are read after the wait (on PostgreSQL; SQLite runs one writer at a time anyway)."""
    for condition in (Client.id == ref, Client.name == ref):
        query = _with_credentials().where(condition)
        if for_update:
            query = query.with_for_update(of=Client)
        client = (await session.scalars(query)).first()
        if client is not None:
            return client
    return None


async def find_active_by_token_hash(session: AsyncSession, token_hash: str) -> Client | None:
    query = _with_credentials().where(Client.token_hash == token_hash, Client.revoked_at.is_(None))
    return (await session.scalars(query)).first()


async def list_all(session: AsyncSession) -> Sequence[Client]:
    return (await session.scalars(_with_credentials().order_by(Client.name))).all()


async def name_taken(session: AsyncSession, name: str) -> bool:
    return (await session.scalar(select(Client.id).where(Client.name == name))) is not None
