"""What a request contributes to its audit row: set by auth and handlers, written by the middleware."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

STATE_KEY = "audit"


@dataclass
class AuditContext:
    actor_kind: str  # "admin" | "client"
    actor: str
    action: str | None = None  # defaults to the route's function name
    credential_id: str | None = None
    credential_label: str | None = None
    credential_version: int | None = None
    exchange: str | None = None

    def about(self, credential: object) -> None:
        """Name the credential this request acted on (anything with id, label, exchange, version)."""
        self.credential_id = getattr(credential, "id", None)
        self.credential_label = getattr(credential, "label", None)
        self.exchange = getattr(credential, "exchange", None)
        self.credential_version = getattr(credential, "active_version", None)


def start_audit(scope: Scope, actor_kind: str, actor: str) -> AuditContext:
    """Kept in the ASGI scope's state (a route's `request.scope`), where the request observer reads it."""
    context = AuditContext(actor_kind, actor)
    scope.setdefault("state", {})[STATE_KEY] = context
    return context


def audit_of(scope: Scope) -> AuditContext | None:
    context: AuditContext | None = scope.get("state", {}).get(STATE_KEY)
    return context
