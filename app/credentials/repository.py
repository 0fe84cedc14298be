"""Every query on credentials and their versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import ForUpdateArg

from app.credentials.models import Credential, CredentialVersion
from app.db import utcnow
from app.errors import Conflict


async def find(session: AsyncSession, ref: str, *, hold: bool = False) -> Credential | None:
    """A credential by id, by label, or by `exchange:label` when a label exists on two exchanges.
    `hold`: for a write that will refer to it (a grant), a concurrent delete waits for this
    transaction to end (PostgreSQL's FOR KEY SHARE; SQLite runs one writer at a time anyway)."""
    lock = ForUpdateArg(read=True, key_share=True) if hold else None
    found = await session.get(Credential, ref, with_for_update=lock)
    if found is not None:
        return found
    exchange, sep, label = ref.partition(":")
    query = select(Credential).where(Credential.label == (label if sep else ref))
    if hold:
        query = query.with_for_update(read=True, key_share=True)
    if sep:
        query = query.where(Credential.exchange == exchange)
    matches = (await session.scalars(query.limit(2))).all()
    if len(matches) > 1:
        raise Conflict(f"label '{ref}' exists on several exchanges; use the id or 'exchange:label'")
    return matches[0] if matches else None


async def list_all(session: AsyncSession, exchange: str | None = None) -> Sequence[Credential]:
    query = select(Credential).order_by(Credential.exchange, Credential.label)
    if exchange is not None:
        query = query.where(Credential.exchange == exchange)
    return (await session.scalars(query)).all()


async def label_taken(session: AsyncSession, exchange: str, label: str, except_id: str | None = None) -> bool:
    query = select(func.count()).select_from(Credential).where(
        Credential.exchange == exchange, Credential.label == label)
    if except_id is not None:
        query = query.where(Credential.id != except_id)
    return bool(await session.scalar(query))


async def versions(session: AsyncSession, credential_id: str) -> Sequence[CredentialVersion]:
    query = select(CredentialVersion).where(CredentialVersion.credential_id == credential_id)
    return (await session.scalars(query.order_by(CredentialVersion.version))).all()


async def newest_version(session: AsyncSession, credential_id: str) -> int:
    query = select(func.max(CredentialVersion.version)).where(CredentialVersion.credential_id == credential_id)
    return int(await session.scalar(query) or 0)


async def get_version(session: AsyncSession, credential_id: str, version: int) -> CredentialVersion | None:
    return await session.get(CredentialVersion, (credential_id, version))


async def promote(session: AsyncSession, credential: Credential, new: CredentialVersion) -> bool:
    """Point the credential at `new` only if nobody moved it since we read it; False if they did."""
    result = await session.execute(
        update(Credential)
        .where(Credential.id == credential.id, Credential.active_version == credential.active_version)
        # What the exchange said of the old key (whether it works, what it may do) is not what it says
        # of the new one: unknown until checked.
        .values(active_version=new.version, key_type=new.key_type, api_key_hint=new.api_key_hint,
                check_status=None, check_detail=None, checked_at=None, exchange_permissions=None,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
