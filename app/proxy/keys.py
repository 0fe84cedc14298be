"""Decrypted signing keys, cached per credential version so the hot path skips the database and the vault.

A version's material never changes (rotation writes a new version), so a cache keyed by
(credential id, version) can never pair one version's key with another's secret, and needs no
invalidation for rotation: the next request simply asks for the new version.

Concurrent misses for one version share one load: after a start or a rotation, a busy key's
requests would otherwise each read and unwrap it (64 at once stalled them for up to a second).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clients.grants import GrantedCredential
from app.credentials import repository
from app.credentials.models import Credential
from app.errors import NotFound
from app.exchanges.base import SigningKey
from app.exchanges.keys import signing_key
from app.exchanges.registry import get_exchange
from app.vault.envelope import Sealed
from app.vault.service import Vault

MAX_CACHED = 100_000


class SigningKeyCache:
    def __init__(self, vault: Vault, sessionmaker: async_sessionmaker[AsyncSession],
                 max_entries: int = MAX_CACHED) -> None:
        self._vault = vault
        self._sessionmaker = sessionmaker
        self._max = max_entries
        self._keys: OrderedDict[tuple[str, int], SigningKey] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future[SigningKey]] = {}

    async def get(self, credential: Credential | GrantedCredential) -> SigningKey:
        cache_key = (credential.id, credential.active_version)
        key = self._keys.get(cache_key)
        if key is not None:
            self._keys.move_to_end(cache_key)
            return key
        loading = self._loading.get(cache_key)
        if loading is None:
            loading = asyncio.ensure_future(self._fetch(credential))
            self._loading[cache_key] = loading
            loading.add_done_callback(lambda done: self._settle(cache_key, done))
        # shield: one caller giving up must not cancel the load the others wait for.
        return await asyncio.shield(loading)

    def clear(self) -> None:
        self._keys.clear()
        self._loading.clear()

    def forget(self, credential_id: str) -> None:
        """Drop every cached version of a credential (deleted or disabled): no key outlives its need."""
        for cache_key in [k for k in self._keys if k[0] == credential_id]:
            del self._keys[cache_key]
        for cache_key in [k for k in self._loading if k[0] == credential_id]:
            del self._loading[cache_key]  # a load under way is not kept when it lands

    def _settle(self, cache_key: tuple[str, int], done: asyncio.Future[SigningKey]) -> None:
        failed = done.cancelled() or done.exception() is not None  # read here, even if no waiter is left
        if self._loading.get(cache_key) is not done:
            return  # forgotten or cleared meanwhile
        del self._loading[cache_key]
        if failed:
            return  # nothing cached: the next request tries again (its waiters got the error)
        self._keys[cache_key] = done.result()
        if len(self._keys) > self._max:
            self._keys.popitem(last=False)

    async def of_version(self, credential: Credential, version: int) -> SigningKey:
        """One version's key, opened for a check and not kept: a rollback's, before it is restored."""
        async with self._sessionmaker() as session:
            return await self._load(session, credential, version)

    async def _fetch(self, credential: Credential | GrantedCredential) -> SigningKey:
        async with self._sessionmaker() as session:
            return await self._load(session, credential, credential.active_version)

    async def _load(self, session: AsyncSession, credential: Credential | GrantedCredential,
                    number: int) -> SigningKey:
        version = await repository.get_version(session, credential.id, number)
        spec = get_exchange(credential.exchange)
        if version is None or spec is None:
            raise NotFound(f"credential '{credential.label}' has no usable version {number}")
        sealed = Sealed(version.ciphertext, version.wrapped_key, version.master_key_id)
        material = self._vault.open(sealed, credential.id, version.version)
        return signing_key(spec, version.key_type, material.api_key, material.api_secret,  # type: ignore[arg-type]
                           material.passphrase)
