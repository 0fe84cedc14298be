"""A credential as the API and the command line show it: metadata, versions, last check; no secret."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials import repository, service
from app.credentials.models import Credential
from app.credentials.schemas import (
    CheckRead,
    CredentialDetail,
    CredentialRead,
    CredentialVersionRead,
    KeyPermissionsRead,
)
from app.db import utcnow
from app.exchanges.base import CheckResult, KeyPermissions


def stored_check(credential: Credential) -> CheckRead | None:
    if credential.check_status is None:
        return None
    stored = credential.exchange_permissions
    return CheckRead(status=credential.check_status, detail=credential.check_detail, checked_at=credential.checked_at,
                     permissions=KeyPermissionsRead(**stored) if stored else None,
                     warnings=service.warnings_of(KeyPermissions(**stored) if stored else None))


def fresh_check(result: CheckResult) -> CheckRead:
    permissions = result.permissions
    return CheckRead(status=result.status, detail=result.detail, checked_at=utcnow(),
                     permissions=KeyPermissionsRead(**vars(permissions)) if permissions else None,
                     warnings=service.warnings_of(permissions))


def summary(credential: Credential) -> CredentialRead:
    return CredentialRead(
        id=credential.id, exchange=credential.exchange, label=credential.label, key_type=credential.key_type,
        environment=credential.environment, permissions=credential.permissions, rate_limit=credential.rate_limit,
        enabled=credential.enabled, api_key_hint=credential.api_key_hint, active_version=credential.active_version,
        created_at=credential.created_at, updated_at=credential.updated_at, check=stored_check(credential))


async def detail(session: AsyncSession, credential: Credential) -> CredentialDetail:
    versions = [
        CredentialVersionRead(version=v.version, key_type=v.key_type, api_key_hint=v.api_key_hint,
                              master_key_id=v.master_key_id, active=v.version == credential.active_version,
                              created_at=v.created_at)
        for v in await repository.versions(session, credential.id)
    ]
    return CredentialDetail(**summary(credential).model_dump(), versions=versions)
