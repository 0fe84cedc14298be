"""Queries the vault needs: which master keys seal stored rows, and the cluster's key states."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials.models import CredentialVersion
from app.db import utcnow
from app.vault.keyring import KeyRing, MasterKey
from app.vault.models import MasterKeyState


async def count_by_master_key(session: AsyncSession) -> dict[str, int]:
    query = select(CredentialVersion.master_key_id, func.count()).group_by(CredentialVersion.master_key_id)
    return {key_id: count for key_id, count in (await session.execute(query)).all()}


async def key_states(session: AsyncSession) -> dict[str, MasterKeyState]:
    return {row.id: row for row in (await session.scalars(select(MasterKeyState))).all()}


async def sealing_key(session: AsyncSession, ring: KeyRing) -> MasterKey:
    """The key new data keys are wrapped under: the latest promoted one this replica holds, else the
    first configured one; retired keys never."""
    states = await key_states(session)
    promoted = sorted((s for s in states.values() if s.promoted_at and not s.retired_at),
                      key=lambda s: s.promoted_at or utcnow(), reverse=True)
    for state in promoted:
        key = ring.get(state.id)
        if key is not None:
            return key
    for key in ring.keys:
        held = states.get(key.id)
        if held is None or held.retired_at is None:
            return key
    return ring.primary


async def mark(session: AsyncSession, key_id: str, *, promoted: bool = False, retired: bool = False) -> MasterKeyState:
    state = await session.get(MasterKeyState, key_id)
    if state is None:
        state = MasterKeyState(id=key_id)
        session.add(state)
    if promoted:
        state.promoted_at = utcnow()
    if retired:
        state.retired_at = utcnow()
    await session.flush()
    return state
