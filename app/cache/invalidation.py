"""Admin writes make every replica forget what it cached about clients and credentials.

Locally at once; on other replicas through a Redis pub/sub channel, within milliseconds. Caches
also expire on their own (a few seconds), which bounds staleness if a message is ever lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, Request

from app.redis_client import failures as redis_failures
from app.tasks import stop

log = logging.getLogger("signvault.cache")


class Invalidation:
    def __init__(self, redis: Any | None, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}invalidate"
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_change(self, forget: Callable[[], None]) -> None:
        self._listeners.append(forget)

    def _forget(self) -> None:
        for forget in self._listeners:
            forget()

    async def announce(self) -> None:
        self._forget()
        if self._redis is not None:
            try:
                await self._redis.publish(self._channel, b"*")
            except redis_failures() as exc:  # other replicas fall back on their caches' expiry
                log.warning("could not announce a change to other replicas: %s", type(exc).__name__)

    def start(self) -> None:
        if self._redis is not None:
            self._task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        await stop(self._task)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:  # type: ignore[union-attr]
                    await pubsub.subscribe(self._channel)
                    self._forget()  # we may have missed messages while (re)connecting
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._forget()
            except redis_failures() as exc:
                log.warning("change announcements lost (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)


async def _announce_after_write(request: Request) -> AsyncIterator[None]:
    yield
    if request.method not in ("GET", "HEAD"):
        await request.app.state.invalidation.announce()


# On admin routers: after a successful write, caches everywhere drop what they knew.
announce_changes = Depends(_announce_after_write, scope="function")
