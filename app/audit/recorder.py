"""Writes a request's audit row once its response is out. Never holds a secret."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.context import AuditContext
from app.audit.models import AuditEvent

log = logging.getLogger("signvault.audit")


async def record(app: Any, scope: dict[str, Any], context: AuditContext, request_id: str, status: int,
                 latency_ms: float) -> None:
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(app.state, "sessionmaker", None)
    if sessionmaker is None:
        return
    endpoint: Any = scope.get("endpoint")
    event = AuditEvent(
        request_id=request_id, actor_kind=context.actor_kind, actor=context.actor,
        action=context.action or getattr(endpoint, "__name__", "unknown"), method=scope["method"],
        path=scope["path"][:512], status=status, latency_ms=round(latency_ms, 3),
        credential_id=context.credential_id, credential_label=context.credential_label,
        credential_version=context.credential_version, exchange=context.exchange,
    )
    try:
        async with sessionmaker() as session, session.begin():
            session.add(event)
    except Exception as exc:  # the response is already out; losing the row must not crash the worker
        log.error("audit row not written for request %s: %s", request_id, type(exc).__name__)
