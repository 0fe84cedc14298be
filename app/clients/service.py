"""Client lifecycle: create with a one-time token, scope to credentials, rotate the token, revoke."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients import repository
from app.clients.models import Client
from app.clients.schemas import ClientCreate, ClientUpdate
from app.credentials import repository as credentials
from app.credentials.models import Credential
from app.db import utcnow
from app.errors import Conflict, FieldProblem, InvalidInput, NotFound
from app.tokens import CLIENT_PREFIX, hash_token, new_token


class ClientNotFound(NotFound):
    slug, title = "client-not-found", "No such client"


class ClientNameTaken(Conflict):
    slug, title = "client-name-taken", "Client name already used"


class ClientRevoked(Conflict):
    slug, title = "client-revoked", "The client is revoked"


async def _resolve(session: AsyncSession, refs: Sequence[str]) -> list[Credential]:
    found: dict[str, Credential] = {}
    missing: list[FieldProblem] = []
    for i, ref in enumerate(refs):
        credential = await credentials.find(session, ref, hold=True)
        if credential is None:
            missing.append(FieldProblem(field=f"credentials.{i}", message="no such credential"))
        else:
            found[credential.id] = credential
    if missing:
        raise InvalidInput("unknown credentials: " + ", ".join(m.field for m in missing), errors=missing)
    return list(found.values())


async def get(session: AsyncSession, ref: str, *, for_update: bool = False) -> Client:
    """`for_update` for a write: two writes to one client run one after the other, so a PATCH
    replaces the credentials it read, not a list another PATCH changed meanwhile."""
    client = await repository.find(session, ref, for_update=for_update)
    if client is None:
        raise ClientNotFound(f"no client '{ref}'")
    return client


async def create(session: AsyncSession, data: ClientCreate) -> tuple[Client, str]:
    if await repository.name_taken(session, data.name):
        raise ClientNameTaken(f"a client named '{data.name}' exists")
    token = new_token(CLIENT_PREFIX)
    client = Client(id=str(uuid.uuid4()), name=data.name, token_hash=hash_token(token),
                    permissions=list(data.permissions), rate_limit=data.rate_limit,
                    credentials=await _resolve(session, data.credentials))
    session.add(client)
    try:
        await session.flush()
    except IntegrityError:
        raise ClientNameTaken(f"a client named '{data.name}' exists") from None
    return client, token


async def update(session: AsyncSession, client: Client, data: ClientUpdate) -> Client:
    if data.credentials is not None:
        client.credentials = await _resolve(session, data.credentials)
    if data.permissions is not None:
        client.permissions = list(data.permissions)
    if "rate_limit" in data.model_fields_set:
        client.rate_limit = data.rate_limit
    await session.flush()
    return client


async def rotate_token(session: AsyncSession, client: Client) -> str:
    """A new token replaces the old one at once: the old one fails from the next request on."""
    if client.revoked_at is not None:
        raise ClientRevoked(f"client '{client.name}' is revoked; create a new client")
    token = new_token(CLIENT_PREFIX)
    client.token_hash = hash_token(token)
    client.token_rotated_at = utcnow()
    await session.flush()
    return token


async def revoke(session: AsyncSession, client: Client) -> None:
    """Revoked clients stay listed for audit; their token fails from the next request on."""
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        await session.flush()
