"""Strictly increasing nonces per credential (Kraken), and the per-key order they are sent in.

Nonces are microseconds since the epoch, bumped past the last one issued: they keep increasing
across restarts (time moves on) and never collide under concurrency. With Redis configured the
high-water mark lives there, so every replica draws from the same sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app.errors import ServiceUnavailable
from app.redis_client import failures as redis_failures

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
    def __init__(self, redis: Any, prefix: str, hold_s: float = 15.0) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = prefix
        self._hold_s = hold_s  # longer than one signed call takes; a crashed holder frees it after this
        self._script = redis.register_script(_NEXT_NONCE)

    @asynccontextmanager
    async def in_order(self, key: str) -> AsyncIterator[None]:
        """Across replicas too: the local lock queues this process's callers, the Redis lock the rest."""
        async with super().in_order(key):
            lock = self._redis.lock(f"{self._prefix}order:{key}", timeout=self._hold_s,
                                    blocking_timeout=self._hold_s)
            try:
                acquired = await lock.acquire()
            except redis_failures():
                raise NonceStoreUnavailable("the shared nonce store (Redis) is unreachable") from None
            if not acquired:
                raise NonceStoreUnavailable("another replica held this key's send order too long")
            try:
                yield
            finally:
                with contextlib.suppress(*redis_failures()):
                    await lock.release()

    async def next(self, key: str) -> int:
        try:
            return int(await self._script(keys=[f"{self._prefix}nonce:{key}"]))
        except redis_failures():
            # Without the shared high-water mark a nonce could repeat another replica's: fail closed.
            raise NonceStoreUnavailable("the shared nonce store (Redis) is unreachable") from None
