"""Who is calling the client routes: a client token in `X-Signvault-Token`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.context import start_audit
from app.cache.clients import ClientCache
from app.clients import repository
from app.clients.grants import SigningClient
from app.clients.models import Client
from app.db import SessionDep
from app.errors import NotAuthenticated
from app.tokens import hash_token, same_hash

TOKEN_HEADER = "X-Signvault-Token"  # nosec B105

client_token = APIKeyHeader(
    name=TOKEN_HEADER, auto_error=False, scheme_name="ClientToken",
    description="A client token (`sv_…`), created by an admin through POST /admin/clients.",
)


def _token_missing() -> NotAuthenticated:
    return NotAuthenticated(f"the {TOKEN_HEADER} header is required", scheme=TOKEN_HEADER)


async def _client_for(session: AsyncSession, presented: str | None) -> Client:
    """The client behind the token, its credentials loaded with it (no lazy loads later)."""
    if not presented:
        raise _token_missing()
    digest = hash_token(presented)
    client = await repository.find_active_by_token_hash(session, digest)
    if client is None or not same_hash(client.token_hash, digest):
        raise NotAuthenticated("the client token is not valid", scheme=TOKEN_HEADER)
    return client


async def require_client(
    request: Request, session: SessionDep, presented: Annotated[str | None, Depends(client_token)],
) -> Client:
    client = await _client_for(session, presented)
    start_audit(request.scope, "client", client.name)
    return client


ClientDep = Annotated[Client, Depends(require_client)]


async def signing_client(state: Any, presented: str | None) -> SigningClient:
    """The check for /proxy and /sign: from the client cache, else on a short read-only session
    closed before the exchange call. Admin writes clear the cache on every replica. `state` is the
    app's state (client_cache, readonly_sessionmaker). The client comes as plain values (grants.py)."""
    if not presented:
        raise _token_missing()

    async def load() -> SigningClient:
        async with state.readonly_sessionmaker() as session:
            return SigningClient.of(await _client_for(session, presented))

    cache: ClientCache = state.client_cache
    return await cache.get(hash_token(presented), load)


async def require_signing_client(
    request: Request, presented: Annotated[str | None, Depends(client_token)],
) -> SigningClient:
    client = await signing_client(request.app.state, presented)
    start_audit(request.scope, "client", client.name)
    return client


SigningClientDep = Annotated[SigningClient, Depends(require_signing_client)]
