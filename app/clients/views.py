"""A client as the API and the command line show it: never its token."""

from __future__ import annotations

from app.clients.models import Client
from app.clients.schemas import ClientRead, CredentialRef


def summary(client: Client) -> ClientRead:
    return ClientRead(
        id=client.id, name=client.name, permissions=client.permissions, rate_limit=client.rate_limit,
        credentials=[CredentialRef(id=c.id, exchange=c.exchange, label=c.label) for c in client.credentials],
        active=client.revoked_at is None, created_at=client.created_at,
        token_rotated_at=client.token_rotated_at, revoked_at=client.revoked_at,
    )
