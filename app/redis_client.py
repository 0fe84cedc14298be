"""The Redis connection shared state goes through: limits, cooldowns, nonces, cache invalidation.

Redis is optional, and its client library adds ~6 MB to a worker's memory: nothing imports it until
`connect()` runs, which only happens with SIGNVAULT_REDIS_URL set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_CONNECTIONS = 64
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
