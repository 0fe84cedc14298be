"""Queries the vault needs over stored credential versions."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials.models import CredentialVersion


async def count_by_master_key(session: AsyncSession) -> dict[str, int]:
    query = select(CredentialVersion.master_key_id, func.count()).group_by(CredentialVersion.master_key_id)
    return {key_id: count for key_id, count in (await session.execute(query)).all()}
