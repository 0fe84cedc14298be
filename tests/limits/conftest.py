"""A TCP relay in front of the test Redis, for tests that cut it off and bring it back."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.tcp_relay import TcpRelay


@pytest.fixture
def relay(redis_url: str) -> Iterator[TcpRelay]:
    target = urlsplit(redis_url)
    with TcpRelay(target.hostname or "127.0.0.1", target.port or 6379) as relay:
        yield relay
