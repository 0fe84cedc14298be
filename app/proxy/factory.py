"""Builds the signing service from settings: one place, for `signvault serve` and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clients.auth import SigningClients
from app.limits.limiter import Limiter
from app.limits.redis_store import RedisWindows
from app.proxy.http1 import Http1Client
from app.proxy.keys import SigningKeyCache
from app.proxy.nonce_ceilings import NonceCeilings
from app.proxy.nonces import NonceSource, RedisNonceSource
from app.proxy.service import SigningService
from app.proxy.upstream import Http1Upstream, HttpxUpstream, Upstream, create_client
from app.redis_client import RedisBreaker
from app.redis_client import connect as connect_redis
from app.settings import Settings
from app.vault.service import Vault


@dataclass
class Signing:
    service: SigningService
    redis: Any | None  # the shared store, when SIGNVAULT_REDIS_URL is set
    http: httpx.AsyncClient  # on the same egress path, for checks off the hot path

    def start(self) -> None:
        if self.service.limiter.notices is not None:
            self.service.limiter.notices.start()

    async def close(self) -> None:
        await self.service.nonces.close()  # the last nonces' record, so a restart starts above them
        if self.service.limiter.notices is not None:
            await self.service.limiter.notices.close()
        await self.service.limiter.breaker.close()
        await self.service.upstream.aclose()
        await self.http.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def build_signing(settings: Settings, vault: Vault, engine: AsyncEngine,
                  readonly: async_sessionmaker[AsyncSession]) -> Signing:
    """The egress-bound HTTP client, the shared (or local) limits and nonces, and the key cache."""
    proxy = settings.egress_proxy.get_secret_value() if settings.egress_proxy else None
    http = create_client(settings.upstream_timeout_s, egress_proxy=proxy, source_ip=settings.egress_source_ip)
    upstream: Upstream = (Http1Upstream(Http1Client(settings.upstream_timeout_s, proxy=proxy,
                                                    source_ip=settings.egress_source_ip))
                          if settings.upstream_client == "http1" else HttpxUpstream(http))
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    # A call waits for its turn on a key at most as long as it may wait for the exchange.
    wait_s = settings.upstream_timeout_s
    # One judgement of whether Redis answers, for everything that asks it on a request's path.
    breaker = RedisBreaker(redis.ping) if redis is not None else None
    ceilings = NonceCeilings(engine)
    nonces = (RedisNonceSource(redis, settings.redis_prefix, wait_s=wait_s, breaker=breaker, ceilings=ceilings)
              if redis is not None else NonceSource(wait_s, ceilings))
    limiter = Limiter(RedisWindows(redis, settings.redis_prefix) if redis is not None else None, breaker=breaker,
                      on_redis_error=settings.limits_on_redis_error, replicas=settings.replicas)
    if redis is not None and not settings.uses_sqlite:
        from app.limits.notices import CooldownNotices, channel_for  # asyncpg's listener: only on PostgreSQL

        limiter.notices = CooldownNotices(settings.resolved_database_url, channel_for(settings.redis_prefix),
                                          limiter.heard_cooldown)
    service = SigningService(settings, SigningClients(readonly), SigningKeyCache(vault, readonly), nonces, upstream,
                             limiter)
    return Signing(service, redis, http)
