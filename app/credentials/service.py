"""Credential lifecycle: validate key material for its exchange, seal it, version it, rotate it."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials import repository
from app.credentials.models import Credential, CredentialVersion
from app.credentials.schemas import CredentialCreate, CredentialRotate, CredentialUpdate, SecretFields
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.exchanges.base import CheckResult, ExchangeSpec, KeyPermissions, KeyType, SigningKey
from app.exchanges.keys import normalise_secret, secret_problem, signing_key
from app.exchanges.registry import EXCHANGES, get_exchange
from app.vault.envelope import Sealed
from app.vault.service import SecretMaterial, Vault


class CredentialNotFound(NotFound):
    slug, title = "credential-not-found", "No such credential"


class LabelTaken(Conflict):
    slug, title = "label-taken", "Label already used on this exchange"


class RotationConflict(Conflict):
    slug, title = "rotation-conflict", "The credential changed while this rotation ran"


def api_key_hint(api_key: str) -> str:
    if len(api_key) >= 12:
        return f"{api_key[:4]}…{api_key[-4:]}"
    return f"…{api_key[-2:]}"  # short keys: showing eight characters would show most of the key


def _exchange(exchange_id: str) -> ExchangeSpec:
    spec = get_exchange(exchange_id)
    if spec is None:
        raise InvalidInput.field("exchange", f"unknown exchange; known: {', '.join(sorted(EXCHANGES))}")
    return spec


def _material(spec: ExchangeSpec, key_type: KeyType, fields: SecretFields) -> SecretMaterial:
    """Check the secrets against the exchange's scheme; the messages never quote the values."""
    if key_type not in spec.key_types:
        raise InvalidInput.field("key_type", f"{spec.name} supports {', '.join(spec.key_types)}")
    secret = normalise_secret(fields.api_secret.get_secret_value())
    problem = secret_problem(spec, key_type, secret) if secret else "must not be empty"
    if problem:
        raise InvalidInput.field("api_secret", problem)
    passphrase = fields.passphrase.get_secret_value() if fields.passphrase else None
    if spec.needs_passphrase and not passphrase:
        raise InvalidInput.field("passphrase", f"{spec.name} keys need the passphrase set when the key was made")
    if not spec.needs_passphrase and passphrase:
        raise InvalidInput.field("passphrase", f"{spec.name} keys have no passphrase")
    return SecretMaterial(fields.api_key.get_secret_value(), secret, passphrase)


async def _new_version(session: AsyncSession, vault: Vault, credential_id: str, version: int, key_type: KeyType,
                       material: SecretMaterial) -> CredentialVersion:
    sealed = await vault.seal(session, material, credential_id, version)
    return CredentialVersion(
        credential_id=credential_id, version=version, key_type=key_type,
        api_key_hint=api_key_hint(material.api_key), ciphertext=sealed.ciphertext,
        wrapped_key=sealed.wrapped_key, master_key_id=sealed.master_key_id,
    )


class KeyCheckFailed(InvalidInput):
    slug, title = "key-check-failed", "The exchange did not accept the key"


class WithdrawKeyRefused(InvalidInput):
    slug, title = "withdraw-key-refused", "Keys that can withdraw are refused"


def refuse_withdrawing(result: CheckResult, field: str = "api_key") -> None:
    """SIGNVAULT_REFUSE_WITHDRAW_KEYS, for a new key, a rotation's and a rollback's alike: a key the
    exchange says can withdraw is refused (a check that could not tell lets it through, as the
    setting documents). `field` names what the caller sent: the key, or the version to restore."""
    if result.permissions is not None and result.permissions.withdraw:
        raise WithdrawKeyRefused.field(field, "the exchange says this key can withdraw; use one without withdrawals")


def new_material(data: CredentialCreate) -> tuple[ExchangeSpec, KeyType, SecretMaterial]:
    """Validate a new credential's key material for its exchange, without touching the database."""
    spec = _exchange(data.exchange)
    if data.environment not in spec.environments:
        raise InvalidInput.field("environment", f"{spec.name} offers {', '.join(spec.environments)}")
    key_type = _key_type(data.key_type or spec.default_key_type)
    return spec, key_type, _material(spec, key_type, data)


def rotation_material(credential: Credential, data: CredentialRotate) -> tuple[KeyType, SecretMaterial]:
    spec = _exchange(credential.exchange)
    key_type = _key_type(data.key_type or credential.key_type)
    return key_type, _material(spec, key_type, data)


def _key_type(name: str) -> KeyType:
    """A key type as the signers name it: the API's enum and the stored column hold the same names."""
    return cast(KeyType, str(name))


def signing_key_of(exchange: str, key_type: KeyType, material: SecretMaterial) -> SigningKey:
    return signing_key(_exchange(exchange), key_type, material.api_key, material.api_secret, material.passphrase)


def warnings_of(permissions: KeyPermissions | None) -> list[str]:
    if permissions is None:
        return []
    warnings = []
    if permissions.withdraw:
        warnings.append("withdrawals are enabled on this key at the exchange: signvault refuses them, "
                        "but anyone holding the secret could; prefer a key without")
    if permissions.ip_restricted is False:
        warnings.append("the key has no IP restriction at the exchange: whitelist the egress IP")
    return warnings


async def record_check(session: AsyncSession, credential_id: str, result: CheckResult,
                       version: int | None = None) -> None:
    """Store a check's result, unless the credential was deleted while it ran, or its key replaced
    (a rotation or rollback since: `version` is the one checked, and the new key's own check stands)."""
    credential = await session.get(Credential, credential_id)
    if credential is None or (version is not None and credential.active_version != version):
        return
    credential.check_status = result.status
    credential.check_detail = result.detail[:300]
    credential.checked_at = utcnow()
    credential.exchange_permissions = asdict(result.permissions) if result.permissions else None
    await session.flush()


async def rollback_target(session: AsyncSession, credential: Credential, to_version: int | None) -> int:
    """The version a rollback would make active: `to_version`, or the newest before the active one."""
    return _rollback_choice({v.version for v in await repository.versions(session, credential.id)},
                            credential.active_version, to_version)


def _rollback_choice(versions: set[int], active: int, to_version: int | None) -> int:
    if to_version is None:
        older = [n for n in versions if n < active]
        if not older:
            raise RotationConflict("there is no earlier version to roll back to")
        return max(older)
    if to_version not in versions or to_version == active:
        raise InvalidInput.field("version", f"choose one of {sorted(versions - {active})}")
    return to_version


async def rollback(session: AsyncSession, credential: Credential, to_version: int | None) -> Credential:
    """Make an earlier version active again, in the same guarded UPDATE as a rotation."""
    versions = {v.version: v for v in await repository.versions(session, credential.id)}
    target = versions[_rollback_choice(set(versions), credential.active_version, to_version)]
    if not await repository.promote(session, credential, target):
        raise RotationConflict("the credential changed while rolling back")
    await session.refresh(credential)
    return credential


async def get(session: AsyncSession, ref: str) -> Credential:
    credential = await repository.find(session, ref)
    if credential is None:
        raise CredentialNotFound(f"no credential '{ref}'")
    return credential


async def create(session: AsyncSession, vault: Vault, data: CredentialCreate,
                 credential_id: str | None = None) -> Credential:
    spec, key_type, material = new_material(data)
    if await repository.label_taken(session, spec.id, data.label):
        raise LabelTaken(f"{spec.id} already has a credential labelled '{data.label}'")
    credential_id = credential_id or str(uuid.uuid4())
    version = await _new_version(session, vault, credential_id, 1, key_type, material)
    credential = Credential(
        id=credential_id, exchange=spec.id, label=data.label, environment=data.environment,
        permissions=list(data.permissions), rate_limit=data.rate_limit, enabled=True,
        active_version=1, key_type=key_type, api_key_hint=version.api_key_hint,
    )
    session.add(credential)
    await _flush(session, LabelTaken(f"{spec.id} already has a credential labelled '{data.label}'"))
    session.add(version)
    await session.flush()
    return credential


async def update(session: AsyncSession, credential: Credential, data: CredentialUpdate) -> Credential:
    if data.label is not None and data.label != credential.label:
        if await repository.label_taken(session, credential.exchange, data.label, except_id=credential.id):
            raise LabelTaken(f"{credential.exchange} already has a credential labelled '{data.label}'")
        credential.label = data.label
    if data.permissions is not None:
        credential.permissions = list(data.permissions)
    if "rate_limit" in data.model_fields_set:
        credential.rate_limit = data.rate_limit
    if data.enabled is not None:
        credential.enabled = data.enabled
    await _flush(session, LabelTaken(f"{credential.exchange} already has a credential labelled '{data.label}'"))
    return credential


async def rotate(session: AsyncSession, vault: Vault, credential: Credential, data: CredentialRotate) -> Credential:
    """Seal the new key as the next version and make it active in one guarded UPDATE.

    The old version stays (inactive) for audit. A concurrent rotation of the same credential loses
    either on the version's primary key or on the guarded pointer, and gets 409.
    """
    if data.expected_version is not None and data.expected_version != credential.active_version:
        raise RotationConflict(
            f"active version is {credential.active_version}, not {data.expected_version}")
    key_type, material = rotation_material(credential, data)
    # After the newest, not after the active one: after a rollback, active + 1 is the version rolled
    # away from, and every rotation would collide with it (409) until that key was made active again.
    number = await repository.newest_version(session, credential.id) + 1
    new = await _new_version(session, vault, credential.id, number, key_type, material)
    session.add(new)
    await _flush(session, RotationConflict("another rotation of this credential finished first"))
    if not await repository.promote(session, credential, new):
        raise RotationConflict("another rotation of this credential finished first")
    await session.refresh(credential)
    return credential


async def delete(session: AsyncSession, credential: Credential) -> None:
    """Remove the credential and every sealed version (its key material is gone for good)."""
    await session.delete(credential)
    await session.flush()


async def open_active(session: AsyncSession, vault: Vault, credential: Credential) -> SecretMaterial:
    version = await repository.get_version(session, credential.id, credential.active_version)
    if version is None:
        raise CredentialNotFound(f"credential '{credential.label}' has no active version")
    sealed = Sealed(version.ciphertext, version.wrapped_key, version.master_key_id)
    return vault.open(sealed, credential.id, version.version)


async def _flush(session: AsyncSession, on_conflict: Conflict) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise on_conflict from None
