"""Request and response bodies of the credential admin API. No read schema has a secret field."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.exchanges.keys import has_control, has_unprintable


class Permission(StrEnum):
    read = "read"
    trade = "trade"
    withdraw = "withdraw"


class KeyType(StrEnum):
    hmac = "hmac"
    ed25519 = "ed25519"
    rsa = "rsa"
    ecdsa = "ecdsa"


class CheckStatus(StrEnum):
    connected = "connected"
    invalid_key = "invalid_key"
    invalid_signature = "invalid_signature"
    ip_not_whitelisted = "ip_not_whitelisted"
    clock_skew = "clock_skew"
    permission_denied = "permission_denied"
    exchange_unavailable = "exchange_unavailable"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

Label = Annotated[str, Field(pattern=LABEL_PATTERN, description="Unique per exchange; letters, digits, . _ -")]
RateLimit = Annotated[str, Field(max_length=200, examples=["10/second;1200/minute"])]


def check_api_key(value: SecretStr) -> SecretStr:
    key = value.get_secret_value().strip()
    if not key:
        raise ValueError("must not be empty")
    if has_unprintable(key):
        raise ValueError("contains whitespace, control or non-ASCII characters inside the key")
    return SecretStr(key)


def check_passphrase(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    passphrase = value.get_secret_value().strip()
    if has_control(passphrase):
        raise ValueError("contains control characters")
    if not passphrase.isascii():  # it goes in an HTTP header, which carries ASCII as the exchange reads it
        raise ValueError("contains non-ASCII characters; exchanges take ASCII passphrases")
    return SecretStr(passphrase) if passphrase else None


def check_rate_limit(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_many(value)
    except ValueError:
        raise ValueError("not a rate limit such as '10/second;1200/minute'") from None
    return value


def unique_permissions(value: list[Permission]) -> list[Permission]:
    return sorted(set(value), key=list(Permission).index)


class _Strict(BaseModel):
    # Unknown fields are refused: a misspelt or misplaced secret must not be silently dropped.
    model_config = ConfigDict(extra="forbid")


class SecretFields(_Strict):
    api_key: SecretStr = Field(max_length=512, description="Trimmed; no whitespace inside.")
    api_secret: SecretStr = Field(min_length=1, max_length=16384)
    passphrase: SecretStr | None = Field(default=None, max_length=512)

    _api_key = field_validator("api_key")(check_api_key)
    _passphrase = field_validator("passphrase")(check_passphrase)


class CredentialCreate(SecretFields):
    exchange: str = Field(max_length=32, examples=["binance"])
    label: Label
    key_type: KeyType | None = Field(default=None, description="Defaults to the exchange's usual type.")
    environment: str = Field(default="live", max_length=16, examples=["live", "testnet", "demo"])
    permissions: list[Permission] = Field(default=[Permission.read, Permission.trade], max_length=3)
    rate_limit: RateLimit | None = None

    _rate_limit = field_validator("rate_limit")(check_rate_limit)
    _permissions = field_validator("permissions")(unique_permissions)


class CredentialRotate(SecretFields):
    key_type: KeyType | None = Field(default=None, description="Defaults to the current key type.")
    expected_version: int | None = Field(
        default=None, ge=1, description="Refuse with 409 unless this is still the active version.")


class CredentialUpdate(_Strict):
    label: Label | None = None
    permissions: list[Permission] | None = Field(default=None, max_length=3)
    rate_limit: RateLimit | None = Field(default=None, description="null removes the limit.")
    enabled: bool | None = None

    _rate_limit = field_validator("rate_limit")(check_rate_limit)

    @field_validator("permissions")
    @classmethod
    def _unique(cls, value: list[Permission] | None) -> list[Permission] | None:
        return None if value is None else unique_permissions(value)


class KeyPermissionsRead(BaseModel):
    read: bool | None
    trade: bool | None
    withdraw: bool | None
    ip_restricted: bool | None


class CheckRead(BaseModel):
    status: CheckStatus
    detail: str | None
    checked_at: datetime | None
    permissions: KeyPermissionsRead | None = Field(description="As the exchange reports them; null where it does not.")
    warnings: list[str]


class CredentialRollback(_Strict):
    version: int | None = Field(default=None, ge=1, description="Defaults to the version before the active one.")


class CredentialVersionRead(BaseModel):
    version: int
    key_type: KeyType
    api_key_hint: str
    master_key_id: str
    active: bool
    created_at: datetime


class CredentialRead(BaseModel):
    id: str
    exchange: str
    label: str
    key_type: KeyType
    environment: str
    permissions: list[Permission]
    rate_limit: str | None
    enabled: bool
    api_key_hint: str = Field(description="First and last characters of the API key; never the key.")
    active_version: int
    created_at: datetime
    updated_at: datetime
    check: CheckRead | None = Field(default=None, description="The last connection check, if any.")


class CredentialDetail(CredentialRead):
    versions: list[CredentialVersionRead]


class CredentialPage(BaseModel):
    items: list[CredentialRead]
