"""`/admin/vault/keys`: master keys across replicas: see them, promote one, retire one no row uses."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from app.admin.auth import AdminDep
from app.cache.invalidation import announce_changes
from app.db import SessionDep
from app.deps import VaultDep
from app.errors import Conflict, NotFound, problem_responses
from app.vault import repository

router = APIRouter(prefix="/admin/vault/keys", tags=["vault"], responses=problem_responses(401, 503),
                   dependencies=[announce_changes])


class MasterKeyRead(BaseModel):
    id: str
    configured_here: bool  # this replica holds the key material
    sealing: bool  # new data keys are wrapped under it
    rows: int  # stored credential versions whose data key it wraps
    promoted_at: datetime | None
    retired_at: datetime | None


class MasterKeyPage(BaseModel):
    items: list[MasterKeyRead]


class KeyInUse(Conflict):
    slug, title = "master-key-in-use", "The master key still wraps stored data keys"


async def _page(session: SessionDep, vault: VaultDep) -> MasterKeyPage:
    ring = vault.require_ring()
    rows = await repository.count_by_master_key(session)
    states = await repository.key_states(session)
    sealing = repository.sealing_id(states, ring)
    ids = list(dict.fromkeys([*ring.ids, *rows, *states]))
    return MasterKeyPage(items=[
        MasterKeyRead(id=key_id, configured_here=ring.get(key_id) is not None, sealing=key_id == sealing,
                      rows=rows.get(key_id, 0), promoted_at=getattr(states.get(key_id), "promoted_at", None),
                      retired_at=getattr(states.get(key_id), "retired_at", None))
        for key_id in ids
    ])


@router.get("", operation_id="list_master_keys")
async def list_master_keys(session: SessionDep, vault: VaultDep, _: AdminDep) -> MasterKeyPage:
    """Every master key this replica holds or any row uses, and which one seals new data keys."""
    return await _page(session, vault)


@router.post("/{key_id}/promote", operation_id="promote_master_key", responses=problem_responses(404, 409))
async def promote_master_key(key_id: str, session: SessionDep, vault: VaultDep, _: AdminDep) -> MasterKeyPage:
    """Make this key seal every new data key, on every replica at once (add it to every replica's
    configuration first). Then run `signvault rewrap`."""
    ring = vault.require_ring()
    if ring.get(key_id) is None:
        raise NotFound(f"master key {key_id} is not configured on this replica")
    state = (await repository.key_states(session)).get(key_id)
    if state is not None and state.retired_at is not None:
        raise Conflict(f"master key {key_id} is retired")
    await repository.mark(session, key_id, promoted=True)
    return await _page(session, vault)


@router.post("/{key_id}/retire", operation_id="retire_master_key", responses=problem_responses(404, 409))
async def retire_master_key(key_id: str, session: SessionDep, vault: VaultDep, _: AdminDep) -> MasterKeyPage:
    """Mark a key unused, so it can leave the configuration. Refused while any row still needs it."""
    ring = vault.require_ring()
    known = ring.get(key_id) is not None or key_id in await repository.key_states(session)
    if known:  # after the seals and rewraps under way, so their rows are counted too
        await repository.hold(session, key_id, exclusive=True)
    rows = (await repository.count_by_master_key(session)).get(key_id, 0)
    if rows:
        raise KeyInUse(f"master key {key_id} still wraps {rows} data keys: run `signvault rewrap` first")
    if not known:
        raise NotFound(f"no master key {key_id}")
    if repository.sealing_id(await repository.key_states(session), ring) == key_id:
        raise KeyInUse(f"master key {key_id} seals new data keys: promote another one first")
    await repository.mark(session, key_id, retired=True)
    return await _page(session, vault)
