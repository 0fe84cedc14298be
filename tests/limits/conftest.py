"""The test Redis for the limits tests: a client that leaves nothing behind, and a TCP relay in front
of it for tests that cut it off and bring it back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.redis_client import connect
from tests.tcp_relay import TcpRelay


@asynccontextmanager
async def redis_client(redis_url: str, prefix: str) -> AsyncIterator[Any]:
    """A client of the test Redis; on the way out, every key under this test's prefix is deleted."""
    client = connect(redis_url)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
def relay(redis_url: str) -> Iterator[TcpRelay]:
    target = urlsplit(redis_url)
    with TcpRelay(target.hostname or "127.0.0.1", target.port or 6379) as relay:
        yield relay
