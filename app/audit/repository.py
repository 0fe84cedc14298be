"""Queries on the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    credential: str | None = None  # id or label
    exchange: str | None = None
    status: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def page(session: AsyncSession, where: AuditFilter, limit: int, before: int | None) -> Sequence[AuditEvent]:
    """Newest first; `before` is the id keyset cursor, stable while new rows keep arriving."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if where.actor is not None:
        query = query.where(AuditEvent.actor == where.actor)
    if where.action is not None:
        query = query.where(AuditEvent.action == where.action)
    if where.credential is not None:
        query = query.where((AuditEvent.credential_id == where.credential)
                            | (AuditEvent.credential_label == where.credential))
    if where.exchange is not None:
        query = query.where(AuditEvent.exchange == where.exchange)
    if where.status is not None:
        query = query.where(AuditEvent.status == where.status)
    if where.since is not None:
        query = query.where(AuditEvent.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.occurred_at < where.until)
    return (await session.scalars(query)).all()
