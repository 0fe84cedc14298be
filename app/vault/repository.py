"""Queries the vault needs: which master keys seal stored rows, and the cluster's key states."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials.models import CredentialVersion
from app.db import utcnow
from app.errors import ServiceUnavailable
from app.vault.keyring import KeyRing, MasterKey
from app.vault.models import MasterKeyState


async def count_by_master_key(session: AsyncSession) -> dict[str, int]:
    query = select(CredentialVersion.master_key_id, func.count()).group_by(CredentialVersion.master_key_id)
    return {key_id: count for key_id, count in (await session.execute(query)).all()}


async def key_states(session: AsyncSession) -> dict[str, MasterKeyState]:
    """As committed now, even for rows this session read before (a seal that retries reads again)."""
    query = select(MasterKeyState).execution_options(populate_existing=True)
    return {row.id: row for row in (await session.scalars(query)).all()}


class SealingKeyMissing(ServiceUnavailable):
    slug, title = "sealing-key-missing", "This replica lacks the master key that seals new data keys"


def sealing_id(states: dict[str, MasterKeyState], ring: KeyRing) -> str | None:
    """Which key wraps new data keys: the latest promoted one not retired (the cluster's choice,
    held here or not), else the first one configured here that is not retired."""
    promoted = [state for state in states.values() if state.promoted_at and not state.retired_at]
    if promoted:
        return max(promoted, key=lambda state: state.promoted_at or utcnow()).id
    retired = {state.id for state in states.values() if state.retired_at}
    return next((key.id for key in ring.keys if key.id not in retired), None)


async def sealing_key(session: AsyncSession, ring: KeyRing) -> MasterKey:
    """The key to wrap a new data key under. A replica that lacks it refuses (503) rather than seal
    under an older or retired key, which ops believe no row needs any more."""
    key_id = sealing_id(await key_states(session), ring)
    key = ring.get(key_id) if key_id else None
    if key is None:
        raise SealingKeyMissing(
            f"master key {key_id} seals new data keys but is not configured on this replica: add it here"
            if key_id else "every master key configured on this replica is retired: add the sealing one here")
    return key


async def hold(session: AsyncSession, key_id: str, *, exclusive: bool) -> MasterKeyState:
    """Lock a key's state row (made if missing) until the transaction ends. Sealing holds it shared,
    retiring exclusively: a retirement waits for the seals under way to commit, then counts their
    rows. (SQLite needs none of this: its writers take turns.)"""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(MasterKeyState).values(id=key_id).on_conflict_do_nothing())
    held = select(MasterKeyState).where(MasterKeyState.id == key_id).with_for_update(read=not exclusive)
    return (await session.scalars(held.execution_options(populate_existing=True))).one()


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
