"""Strictly increasing nonces per credential (Kraken), and the per-key order they are sent in.

Nonces are microseconds since the epoch, bumped past the last one issued: they never collide under
concurrency. With Redis configured the high-water mark lives there, so every replica draws from the
same sequence. Across restarts, time moving on is not enough: a clock stepped back, or a Redis that
lost the sequence, would start below nonces already sent. So the database records the highest nonce
issued (app/proxy/nonce_ceilings.py), and a sequence that starts afresh starts above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app.errors import ServiceUnavailable
from app.proxy.nonce_ceilings import NonceCeilings
from app.redis_client import RedisBreaker
from app.redis_client import failures as redis_failures

log = logging.getLogger("signvault.nonces")

# max(stored + 1, floor, Redis' own clock in µs): atomic, and immune to a replica's drifting clock.
# The floor (ARGV[1]) is at least above what the calling replica drew before, which a Redis restored
# from an older snapshot would not know. A sequence Redis does not hold at all (new, or lost with
# Redis' memory) answers -1 unless ARGV[2] says the floor includes the database's record.
_NEXT_NONCE = """
local stored = redis.call('GET', KEYS[1])
if not stored and ARGV[2] == '' then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nonce = math.max(tonumber(stored or '0') + 1, tonumber(ARGV[1]), now)
redis.call('SET', KEYS[1], string.format('%.0f', nonce))
return string.format('%.0f', nonce)
"""


class NonceStoreUnavailable(ServiceUnavailable):
    slug, title = "nonce-store-unavailable", "Nonces cannot be issued right now"


class CredentialBusy(ServiceUnavailable):
    slug, title = "credential-busy", "Earlier calls on this key are still being sent"


class NonceSource:
    """In-process nonces; `RedisNonceSource` shares them across replicas.

    A call waits for its turn at most `wait_s`: by then its bot has likely given up on it, and an
    order sent that late is one the bot may already have sent again."""

    def __init__(self, wait_s: float = 10.0, ceilings: NonceCeilings | None = None) -> None:
        self._last: dict[str, int] = {}
        self._order: dict[str, asyncio.Lock] = {}
        self._wait_s = wait_s
        self._ceilings = ceilings

    async def next(self, key: str) -> int:
        # The floor is read from the database once per key (and cached), so a process's first call on
        # a key starts above what an earlier one used, even with the clock stepped back since.
        floor = await self._ceilings.floor(key) if self._ceilings is not None else 0
        nonce = max(self._last.get(key, 0) + 1, floor, time.time_ns() // 1000)
        self._last[key] = nonce
        self._noted(key, nonce)
        return nonce

    def _noted(self, key: str, nonce: int) -> None:
        if self._ceilings is not None:
            self._ceilings.note(key, nonce)

    async def close(self) -> None:
        if self._ceilings is not None:
            await self._ceilings.close()

    @asynccontextmanager
    async def in_order(self, key: str) -> AsyncIterator[None]:
        """Hold while signing and sending: a later nonce cannot overtake an earlier one on the wire."""
        lock = self._order.setdefault(key, asyncio.Lock())
        try:
            async with asyncio.timeout(self._wait_s):
                await lock.acquire()
        except TimeoutError:
            raise self._busy("") from None
        try:
            yield
        finally:
            lock.release()

    def _busy(self, where: str) -> CredentialBusy:
        return CredentialBusy(f"this call waited {self._wait_s:g} s behind earlier ones on the same key{where} "
                              "and was not sent", headers={"Retry-After": "1"})


class RedisNonceSource(NonceSource):
    def __init__(self, redis: Any, prefix: str, wait_s: float = 10.0, hold_s: float = 5.0,
                 breaker: RedisBreaker | None = None, ceilings: NonceCeilings | None = None) -> None:
        super().__init__(wait_s, ceilings)
        self._redis = redis
        self._prefix = prefix
        self._breaker = breaker or RedisBreaker(redis.ping)
        # The Redis lock lapses after this unless renewed: its holder renews it while its call is under
        # way (a clock sync and a slow exchange can take two upstream timeouts), and a holder that
        # crashed frees the key within it.
        self._hold_s = hold_s
        self._script = redis.register_script(_NEXT_NONCE)

    @asynccontextmanager
    async def in_order(self, key: str) -> AsyncIterator[None]:
        """Across replicas too: the local lock queues this process's callers, the Redis lock the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s  # one wait for both locks
        async with super().in_order(key):
            lock = self._redis.lock(f"{self._prefix}order:{key}", timeout=self._hold_s,
                                    blocking_timeout=max(deadline - loop.time(), 0.0))
            self._check_answering()
            try:
                acquired = await lock.acquire()
            except redis_failures():
                raise self._unreachable() from None
            if not acquired:
                raise self._busy(" (on other replicas)")
            renewing = asyncio.create_task(self._renew(lock))
            try:
                yield
            finally:
                renewing.cancel()
                with contextlib.suppress(*redis_failures()):
                    await lock.release()

    async def _renew(self, lock: Any) -> None:
        while True:
            await asyncio.sleep(self._hold_s / 3)
            try:
                await lock.reacquire()
            except redis_failures() as exc:  # lapsed or unreachable: another replica may go ahead of us
                log.warning("could not renew a key's send order (%s)", type(exc).__name__)

    async def next(self, key: str) -> int:
        # Without the shared high-water mark a nonce could repeat another replica's: fail closed.
        self._check_answering()
        keys, drawn = [f"{self._prefix}nonce:{key}"], self._last.get(key, 0) + 1
        try:
            nonce = int(await self._script(keys=keys, args=[str(drawn), ""]))
            if nonce < 0:  # Redis holds no sequence for the key: start it above the database's record
                recorded = await self._ceilings.floor(key, fresh=True) if self._ceilings is not None else 0
                nonce = int(await self._script(keys=keys, args=[str(max(drawn, recorded)), "1"]))
        except redis_failures():
            raise self._unreachable() from None
        self._last[key] = max(self._last.get(key, 0), nonce)
        self._noted(key, nonce)
        return nonce

    def _check_answering(self) -> None:
        """Fail at once while Redis is known to be away, rather than each queued call waiting out
        its own socket timeout in turn."""
        if not self._breaker.answering:
            raise _away()

    def _unreachable(self) -> NonceStoreUnavailable:
        self._breaker.failed()
        return _away()


def _away() -> NonceStoreUnavailable:
    return NonceStoreUnavailable("the shared nonce store (Redis) is unreachable", headers={"Retry-After": "1"})
