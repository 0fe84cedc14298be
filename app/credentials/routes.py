"""`/admin/credentials`: add, read, change, rotate and delete exchange credentials."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.admin.auth import AdminDep
from app.audit.context import audit_of
from app.credentials import repository, service
from app.credentials.models import Credential
from app.credentials.schemas import (
    CredentialCreate,
    CredentialDetail,
    CredentialPage,
    CredentialRead,
    CredentialRotate,
    CredentialUpdate,
    CredentialVersionRead,
)
from app.db import SessionDep
from app.deps import VaultDep
from app.errors import problem_responses

router = APIRouter(prefix="/admin/credentials", tags=["credentials"], responses=problem_responses(401))


def _forget_keys(request: Request, credential_id: str) -> None:
    """Drop this replica's decrypted copies; other replicas no longer pick them (version, enabled and
    grants are read with every request) and evict them in time."""
    signing = getattr(request.app.state, "signing", None)
    if signing is not None:
        signing.keys.forget(credential_id)


def _noted(request: Request, credential: Credential) -> Credential:
    context = audit_of(request)
    if context is not None:
        context.about(credential)
    return credential


async def _detail(session: SessionDep, credential: Credential) -> CredentialDetail:
    versions = [
        CredentialVersionRead(
            version=v.version, key_type=v.key_type, api_key_hint=v.api_key_hint,
            master_key_id=v.master_key_id, active=v.version == credential.active_version,
            created_at=v.created_at)
        for v in await repository.versions(session, credential.id)
    ]
    return CredentialDetail(**CredentialRead.model_validate(credential, from_attributes=True).model_dump(),
                            versions=versions)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_credential",
             responses=problem_responses(409, 422, 503))
async def create_credential(body: CredentialCreate, request: Request, session: SessionDep, vault: VaultDep,
                            _: AdminDep) -> CredentialDetail:
    """Store an exchange API key; the response shows metadata and a key hint, never the secret."""
    credential = _noted(request, await service.create(session, vault, body))
    return await _detail(session, credential)


@router.get("", operation_id="list_credentials")
async def list_credentials(session: SessionDep, _: AdminDep, exchange: str | None = None) -> CredentialPage:
    """Every credential's metadata, optionally for one exchange."""
    rows = await repository.list_all(session, exchange)
    return CredentialPage(items=[CredentialRead.model_validate(c, from_attributes=True) for c in rows])


@router.get("/{ref}", operation_id="get_credential", responses=problem_responses(404, 409))
async def get_credential(ref: str, request: Request, session: SessionDep, _: AdminDep) -> CredentialDetail:
    """One credential by id, label or `exchange:label`, with its versions."""
    return await _detail(session, _noted(request, await service.get(session, ref)))


@router.patch("/{ref}", operation_id="update_credential", responses=problem_responses(404, 409, 422))
async def update_credential(ref: str, body: CredentialUpdate, request: Request, session: SessionDep,
                            _: AdminDep) -> CredentialDetail:
    """Change label, permissions, rate limit or enabled. Secrets change only through rotate."""
    credential = _noted(request, await service.get(session, ref))
    updated = await service.update(session, credential, body)
    if not updated.enabled:
        _forget_keys(request, updated.id)
    return await _detail(session, updated)


@router.post("/{ref}/rotate", operation_id="rotate_credential", responses=problem_responses(404, 409, 422, 503))
async def rotate_credential(ref: str, body: CredentialRotate, request: Request, session: SessionDep,
                            vault: VaultDep, _: AdminDep) -> CredentialDetail:
    """Replace the key: the new version becomes active at once; the id and label stay the same."""
    credential = await service.get(session, ref)
    rotated = _noted(request, await service.rotate(session, vault, credential, body))
    _forget_keys(request, rotated.id)
    return await _detail(session, rotated)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_credential",
               responses=problem_responses(404, 409))
async def delete_credential(ref: str, request: Request, session: SessionDep, _: AdminDep) -> Response:
    """Delete the credential and destroy every stored version of its key material."""
    credential = _noted(request, await service.get(session, ref))
    await service.delete(session, credential)
    _forget_keys(request, credential.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
