"""Who is calling the client routes: a client token in `X-Signvault-Token`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    return await _client_by_hash(session, hash_token(presented))


async def _client_by_hash(session: AsyncSession, digest: str) -> Client:
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


class SigningClients:
    """The clients of /proxy and /sign by token: from the cache, else on a short read-only session
    closed before the exchange call. Admin writes clear the cache on every replica (`forget`). A
    client comes as plain values (grants.py)."""

    def __init__(self, readonly: async_sessionmaker[AsyncSession], cache: ClientCache | None = None) -> None:
        self._readonly = readonly
        self._cache = cache or ClientCache()

    async def by_token(self, presented: str | None) -> SigningClient:
        if not presented:
            raise _token_missing()
        return await self._by_hash(hash_token(presented))

    async def again(self, client: SigningClient) -> SigningClient:
        """`client` as a request with its token would find it now: a cache lookup unless an admin
        write or the cache's expiry has dropped it since. Raises if the token no longer works."""
        return await self._by_hash(client.token_hash)

    def forget(self) -> None:
        self._cache.clear()

    async def _by_hash(self, digest: str) -> SigningClient:
        async def load() -> SigningClient:
            async with self._readonly() as session:
                return SigningClient.of(await _client_by_hash(session, digest))

        return await self._cache.get(digest, load)


async def require_signing_client(
    request: Request, presented: Annotated[str | None, Depends(client_token)],
) -> SigningClient:
    client: SigningClient = await request.app.state.signing.clients.by_token(presented)
    start_audit(request.scope, "client", client.name)
    return client


SigningClientDep = Annotated[SigningClient, Depends(require_signing_client)]
