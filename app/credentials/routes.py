"""`/admin/credentials`: add, read, change, check, rotate, roll back and delete exchange credentials.

Routes that ask the exchange something (check, rotate, create with SIGNVAULT_REFUSE_WITHDRAW_KEYS) do
so outside any database transaction, then write in a short one of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.auth import AdminDep
from app.audit.context import audit_of
from app.cache.invalidation import announce_changes
from app.credentials import repository, service, views
from app.credentials.models import Credential
from app.credentials.schemas import (
    CheckRead,
    CredentialCreate,
    CredentialDetail,
    CredentialPage,
    CredentialRollback,
    CredentialRotate,
    CredentialUpdate,
)
from app.db import SessionDep
from app.deps import VaultDep
from app.errors import problem_responses
from app.exchanges.base import CheckResult
from app.proxy.service import SigningService

router = APIRouter(prefix="/admin/credentials", tags=["credentials"], responses=problem_responses(401),
                   dependencies=[announce_changes])


def _signing(request: Request) -> SigningService:
    signing: SigningService = request.app.state.signing
    return signing


@asynccontextmanager
async def _writing(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session, session.begin():
        yield session


async def _load(request: Request, ref: str) -> Credential:
    async with request.app.state.readonly_sessionmaker() as session:
        return await service.get(session, ref)


def _forget_keys(request: Request, credential_id: str) -> None:
    """Drop this replica's decrypted copies; other replicas no longer pick them (version, enabled and
    grants are read with every request) and evict them in time."""
    signing = getattr(request.app.state, "signing", None)
    if signing is not None:
        signing.keys.forget(credential_id)


def _noted(request: Request, credential: Credential) -> Credential:
    context = audit_of(request.scope)
    if context is not None:
        context.about(credential)
    return credential


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_credential",
             responses=problem_responses(409, 422, 503))
async def create_credential(body: CredentialCreate, request: Request, vault: VaultDep,
                            _: AdminDep) -> CredentialDetail:
    """Store an exchange API key; the response shows metadata and a key hint, never the secret.

    With SIGNVAULT_REFUSE_WITHDRAW_KEYS set, the key is checked at the exchange first and refused
    (422) if the exchange says it can withdraw."""
    result: CheckResult | None = None
    credential_id = str(uuid.uuid4())
    if request.app.state.settings.refuse_withdraw_keys:
        spec, key_type, material = service.new_material(body)
        probe = Credential(id=credential_id, exchange=spec.id, label=body.label, environment=body.environment,
                           permissions=list(body.permissions), rate_limit=body.rate_limit, enabled=True,
                           active_version=1, key_type=key_type, api_key_hint="")
        result = await _signing(request).check(probe, service.signing_key_of(spec.id, key_type, material))
        service.refuse_withdrawing(result)
    async with _writing(request) as session:
        credential = _noted(request, await service.create(session, vault, body, credential_id))
        if result is not None:
            await service.record_check(session, credential.id, result)
        return await views.detail(session, credential)


@router.get("", operation_id="list_credentials")
async def list_credentials(session: SessionDep, _: AdminDep, exchange: str | None = None) -> CredentialPage:
    """Every credential's metadata, optionally for one exchange."""
    return CredentialPage(items=[views.summary(c) for c in await repository.list_all(session, exchange)])


@router.get("/{ref}", operation_id="get_credential", responses=problem_responses(404, 409))
async def get_credential(ref: str, request: Request, session: SessionDep, _: AdminDep) -> CredentialDetail:
    """One credential by id, label or `exchange:label`, with its versions and last check."""
    return await views.detail(session, _noted(request, await service.get(session, ref)))


@router.patch("/{ref}", operation_id="update_credential", responses=problem_responses(404, 409, 422))
async def update_credential(ref: str, body: CredentialUpdate, request: Request, session: SessionDep,
                            _: AdminDep) -> CredentialDetail:
    """Change label, permissions, rate limit or enabled. Secrets change only through rotate."""
    credential = _noted(request, await service.get(session, ref))
    updated = await service.update(session, credential, body)
    if not updated.enabled:
        _forget_keys(request, updated.id)
    return await views.detail(session, updated)


@router.post("/{ref}/check", operation_id="check_credential", responses=problem_responses(404, 409, 503))
async def check_credential(ref: str, request: Request, _: AdminDep) -> CheckRead:
    """Call a cheap authenticated endpoint through the egress path and report, in the exchange's
    terms, whether the key works, and what it may do where the exchange says."""
    credential = _noted(request, await _load(request, ref))
    signing = _signing(request)
    result = await signing.check(credential, await signing.keys.get(credential))
    async with _writing(request) as session:
        await service.record_check(session, credential.id, result, credential.active_version)
    return views.fresh_check(result)


@router.post("/{ref}/rotate", operation_id="rotate_credential", responses=problem_responses(404, 409, 422, 503))
async def rotate_credential(
    ref: str, body: CredentialRotate, request: Request, vault: VaultDep, _: AdminDep,
    force: Annotated[bool, Query(description="Promote without waiting for the new key to pass its check.")] = False,
) -> CredentialDetail:
    """Replace the key without downtime: the new key is checked at the exchange first and only then
    made active; a failed check leaves the old key serving (422 says why). Requests already under way
    finish with the version they started with. With SIGNVAULT_REFUSE_WITHDRAW_KEYS set, the new key
    is checked even with `force`, and refused (422) if the exchange says it can withdraw."""
    loaded = _noted(request, await _load(request, ref))
    result: CheckResult | None = None
    refuse_withdraw = request.app.state.settings.refuse_withdraw_keys
    if not force or refuse_withdraw:
        key_type, material = service.rotation_material(loaded, body)
        result = await _signing(request).check(loaded, service.signing_key_of(loaded.exchange, key_type, material))
        if not force and result.status != "connected":
            raise service.KeyCheckFailed(
                f"{result.status}: {result.detail}. The old key stays active; fix the new key (or use ?force=true).")
        if refuse_withdraw:
            service.refuse_withdrawing(result)
    guarded = body.model_copy(update={"expected_version": body.expected_version or loaded.active_version})
    async with _writing(request) as session:
        credential = await service.get(session, ref)
        rotated = _noted(request, await service.rotate(session, vault, credential, guarded))
        if result is not None:
            await service.record_check(session, rotated.id, result)
            await session.refresh(rotated)
        detail = await views.detail(session, rotated)
    _forget_keys(request, rotated.id)
    return detail


@router.post("/{ref}/rollback", operation_id="rollback_credential",
             responses=problem_responses(404, 409, 422, 503))
async def rollback_credential(ref: str, request: Request, _: AdminDep,
                              body: CredentialRollback | None = None) -> CredentialDetail:
    """Make the previous version (or a given one) active again, in one call. With
    SIGNVAULT_REFUSE_WITHDRAW_KEYS set, that version's key is checked at the exchange first and
    refused (422) if the exchange says it can withdraw: withdrawals may have been enabled on an old
    key since it was stored, or it was stored before the setting was."""
    to_version = body.version if body else None
    result: CheckResult | None = None
    checked: Credential | None = None
    if request.app.state.settings.refuse_withdraw_keys:
        async with request.app.state.readonly_sessionmaker() as session:
            checked = _noted(request, await service.get(session, ref))
            to_version = await service.rollback_target(session, checked, to_version)
        signing = _signing(request)
        result = await signing.check(checked, await signing.keys.of_version(checked, to_version))
        service.refuse_withdrawing(result, "version")
    async with _writing(request) as session:
        credential = _noted(request, await service.get(session, ref if checked is None else checked.id))
        if checked is not None and credential.active_version != checked.active_version:
            # Rotated or rolled back while the old key was checked: what this rollback meant to undo is gone.
            raise service.RotationConflict("the credential changed while its old key was checked; look again")
        rolled = await service.rollback(session, credential, to_version)
        if result is not None:
            await service.record_check(session, rolled.id, result, to_version)
            await session.refresh(rolled)
        detail = await views.detail(session, rolled)
    _forget_keys(request, rolled.id)
    return detail


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_credential",
               responses=problem_responses(404, 409))
async def delete_credential(ref: str, request: Request, session: SessionDep, _: AdminDep) -> Response:
    """Delete the credential and destroy every stored version of its key material."""
    credential = _noted(request, await service.get(session, ref))
    await service.delete(session, credential)
    _forget_keys(request, credential.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
