"""Turns a finished request into its audit row and hands it to the batch writer. Never holds a secret."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from app.audit.context import AuditContext


def record(app: Any, scope: Mapping[str, Any], context: AuditContext, request_id: str, status: int,
           latency_ms: float) -> None:
    writer = getattr(app.state, "audit_writer", None)
    if writer is None:
        return
    endpoint: Any = scope.get("endpoint")
    # occurred_at: seconds since the epoch. The writer turns it into the column's UTC time, off the
    # request's path and more cheaply than building a datetime here (app/audit/sqlite_batches.py).
    writer.submit({
        "occurred_at": time.time(), "request_id": request_id, "actor_kind": context.actor_kind, "actor": context.actor,
        "action": context.action or getattr(endpoint, "__name__", "unknown"), "method": scope["method"],
        "path": scope["path"][:512], "status": status, "latency_ms": round(latency_ms, 3),
        "credential_id": context.credential_id, "credential_label": context.credential_label,
        "credential_version": context.credential_version, "exchange": context.exchange,
    })
