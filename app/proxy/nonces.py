"""Strictly increasing nonces per credential (Kraken), and the per-key order they are sent in.

Nonces are microseconds since the epoch, bumped past the last one issued: they keep increasing
across restarts (time moves on) and never collide under concurrency. With Redis configured the
high-water mark lives there, so every replica draws from the same sequence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError

from app.errors import ServiceUnavailable

# max(stored + 1, Redis' own clock in µs): atomic, and immune to a replica's drifting clock.
_NEXT_NONCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local nonce = math.max(last + 1, now)
redis.call('SET', KEYS[1], string.format('%.0f', nonce))
return string.format('%.0f', nonce)
"""


class NonceStoreUnavailable(ServiceUnavailable):
    slug, title = "nonce-store-unavailable", "Nonces cannot be issued right now"


class NonceSource:
    """In-process nonces; `RedisNonceSource` shares them across replicas."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._order: dict[str, asyncio.Lock] = {}

    async def next(self, key: str) -> int:
        nonce = max(self._last.get(key, 0) + 1, time.time_ns() // 1000)
        self._last[key] = nonce
        return nonce

    @asynccontextmanager
    async def in_order(self, key: str) -> AsyncIterator[None]:
        """Hold while signing and sending: a later nonce cannot overtake an earlier one on the wire."""
        lock = self._order.setdefault(key, asyncio.Lock())
        async with lock:
            yield


class RedisNonceSource(NonceSource):
    def __init__(self, redis: Any, prefix: str) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_NEXT_NONCE)

    async def next(self, key: str) -> int:
        try:
            return int(await self._script(keys=[f"{self._prefix}nonce:{key}"]))
        except RedisError:
            # Without the shared high-water mark a nonce could repeat another replica's: fail closed.
            raise NonceStoreUnavailable("the shared nonce store (Redis) is unreachable") from None
