"""Audit log response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    request_id: str | None
    actor_kind: str
    actor: str
    action: str
    method: str
    path: str
    status: int
    latency_ms: float
    credential_id: str | None
    credential_label: str | None
    credential_version: int | None
    exchange: str | None


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    next_before: int | None  # pass as `before` to get the next (older) page
