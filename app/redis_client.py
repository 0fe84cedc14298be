"""The Redis connection shared state goes through (nonces now; limits and cooldowns later)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

MAX_CONNECTIONS = 64
WAIT_FOR_CONNECTION_S = 2.0


def connect(url: str) -> Redis:
    # A blocking pool queues callers for a free connection; the default pool raises
    # "Too many connections" under a burst, which would turn load into errors.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION_S,
        socket_connect_timeout=2.0, socket_timeout=2.0, health_check_interval=15,
    )
    return Redis(connection_pool=pool)
