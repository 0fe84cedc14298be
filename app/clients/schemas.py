"""Request and response bodies of the client admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.credentials.schemas import LABEL_PATTERN, Permission, RateLimit, check_rate_limit, unique_permissions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientCreate(_Strict):
    name: str = Field(pattern=LABEL_PATTERN, description="Unique; letters, digits, . _ -")
    credentials: list[str] = Field(default=[], max_length=1000, description="Credential ids or labels.")
    permissions: list[Permission] = Field(default=[Permission.read], max_length=3)
    rate_limit: RateLimit | None = Field(default=None, description="Across all its credentials.")

    _permissions = field_validator("permissions")(unique_permissions)
    _rate_limit = field_validator("rate_limit")(check_rate_limit)


class ClientUpdate(_Strict):
    credentials: list[str] | None = Field(default=None, max_length=1000)
    permissions: list[Permission] | None = Field(default=None, max_length=3)
    rate_limit: RateLimit | None = Field(default=None, description="null removes the limit.")

    _rate_limit = field_validator("rate_limit")(check_rate_limit)

    @field_validator("permissions")
    @classmethod
    def _unique(cls, value: list[Permission] | None) -> list[Permission] | None:
        return None if value is None else unique_permissions(value)


class CredentialRef(BaseModel):
    id: str
    exchange: str
    label: str


class ClientRead(BaseModel):
    id: str
    name: str
    permissions: list[Permission]
    rate_limit: str | None
    credentials: list[CredentialRef]
    active: bool
    created_at: datetime
    token_rotated_at: datetime
    revoked_at: datetime | None


class ClientWithToken(ClientRead):
    token: str = Field(description="Shown once; signvault keeps only its hash. Send it as X-Signvault-Token.")


class ClientPage(BaseModel):
    items: list[ClientRead]


class Whoami(BaseModel):
    name: str
    permissions: list[Permission]
    credentials: list[CredentialRef]
