"""`/admin/audit`: who did what, with which credential, and how it went."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.admin.auth import AdminDep
from app.audit import repository
from app.audit.schemas import AuditEventRead, AuditPage
from app.db import SessionDep
from app.errors import problem_responses


def _utc(moment: datetime | None) -> datetime | None:
    # A timestamp without an offset is read as UTC, the zone every stored time is in.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


router = APIRouter(prefix="/admin/audit", tags=["audit"], responses=problem_responses(401, 422))


@router.get("", operation_id="list_audit_events")
async def list_audit_events(
    request: Request,
    session: SessionDep,
    _: AdminDep,
    actor: Annotated[str | None, Query(max_length=64, description="Admin token or client name.")] = None,
    action: Annotated[str | None, Query(max_length=64, examples=["create_credential"])] = None,
    credential: Annotated[str | None, Query(max_length=64, description="Credential id or label.")] = None,
    exchange: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Cursor from next_before.")] = None,
) -> AuditPage:
    """Audit events, newest first, filtered and paged."""
    await request.app.state.audit_writer.flush()  # read this replica's own recent writes
    where = repository.AuditFilter(actor, action, credential, exchange, status, _utc(since), _utc(until))
    rows = await repository.page(session, where, limit, before)
    items = [AuditEventRead.model_validate(r) for r in rows]
    return AuditPage(items=items, next_before=items[-1].id if len(items) == limit else None)
