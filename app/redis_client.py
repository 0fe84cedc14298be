"""The Redis connection shared state goes through: limits, cooldowns, nonces, cache invalidation.

Redis is optional, and its client library adds ~6 MB to a worker's memory: nothing imports it until
`connect()` runs, which only happens with SIGNVAULT_REDIS_URL set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from app.tasks import stop

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("signvault.redis")

MAX_CONNECTIONS = 64
CATCH_UP_TRIES = 3
WAIT_FOR_CONNECTION_S = 2.0


def connect(url: str) -> Redis:
    from redis.asyncio import BlockingConnectionPool, Redis

    # A blocking pool queues callers for a free connection; the default pool raises
    # "Too many connections" under a burst, which would turn load into errors.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION_S,
        socket_connect_timeout=2.0, socket_timeout=2.0, health_check_interval=15,
    )
    return Redis(connection_pool=pool)


def failures() -> tuple[type[Exception], ...]:
    """What a Redis call raises when Redis or the way to it fails, for `except` clauses. Python
    evaluates one only when an exception reaches it, and only code holding a client from `connect()`
    calls Redis, so the library is already loaded whenever this runs."""
    from redis.exceptions import RedisError  # LockError and ConnectionError are RedisErrors

    return (RedisError, OSError)


class RedisBreaker:
    """Whether to ask Redis now. After a call fails, callers take their fallback at once (a local
    share, a 503) until a PING in the background answers. A Redis that stops answering, rather than
    refusing, then costs the calls in flight when it stops one socket timeout; the calls after them,
    and the writes that follow an exchange's answer, do not wait at all."""

    def __init__(self, ping: Callable[[], Awaitable[object]], retry_s: float = 1.0) -> None:
        self._ping = ping
        self._retry_s = retry_s
        self._probing: asyncio.Task[None] | None = None
        self._catch_ups: list[Callable[[], Awaitable[object]]] = []

    def when_back(self, catch_up: Callable[[], Awaitable[object]]) -> None:
        """Run `catch_up` after Redis answers again, before callers use it: it writes what was kept
        locally meanwhile. One that fails keeps the breaker open and all are run again later, up to
        CATCH_UP_TRIES times: a Redis that answers PING but refuses writes (out of memory, a replica
        left read-only by a failover) is then used again as it is, rather than never."""
        self._catch_ups.append(catch_up)

    @property
    def answering(self) -> bool:
        return self._probing is None

    def failed(self) -> None:
        if self._probing is None:
            self._probing = asyncio.create_task(self._until_it_answers())

    async def close(self) -> None:
        await stop(self._probing)

    async def _until_it_answers(self) -> None:
        tries = 0
        try:
            while True:
                await asyncio.sleep(self._retry_s)
                with contextlib.suppress(*failures()):
                    await self._ping()
                    try:
                        for catch_up in self._catch_ups:
                            await catch_up()
                    except Exception as exc:
                        tries += 1
                        if tries < CATCH_UP_TRIES:
                            log.warning("Redis answers, but catching it up failed (%s); trying again",
                                        type(exc).__name__)
                            continue
                        log.error("Redis answers, but catching it up failed %d times (%s); using it as it is",
                                  tries, type(exc).__name__)
                    return
        finally:
            self._probing = None
