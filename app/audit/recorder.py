"""Turns a finished request into its audit row and hands it to the batch writer. Never holds a secret."""

from __future__ import annotations

from typing import Any

from app.audit.context import AuditContext
from app.db import utcnow


def record(app: Any, scope: dict[str, Any], context: AuditContext, request_id: str, status: int,
           latency_ms: float) -> None:
    writer = getattr(app.state, "audit_writer", None)
    if writer is None:
        return
    endpoint: Any = scope.get("endpoint")
    writer.submit({
        "occurred_at": utcnow(), "request_id": request_id, "actor_kind": context.actor_kind, "actor": context.actor,
        "action": context.action or getattr(endpoint, "__name__", "unknown"), "method": scope["method"],
        "path": scope["path"][:512], "status": status, "latency_ms": round(latency_ms, 3),
        "credential_id": context.credential_id, "credential_label": context.credential_label,
        "credential_version": context.credential_version, "exchange": context.exchange,
    })
