"""Nonces: strictly increasing per key, in one process and across processes sharing Redis."""

from __future__ import annotations

import asyncio

import pytest

from app.proxy.nonces import NonceSource, NonceStoreUnavailable, RedisNonceSource
from app.redis_client import connect


async def draw(source: NonceSource, key: str, count: int) -> list[int]:
    return list(await asyncio.gather(*(source.next(key) for _ in range(count))))


class TestInProcess:
    def test_concurrent_draws_never_repeat_and_keys_are_independent(self) -> None:
        source = NonceSource()
        nonces = asyncio.run(draw(source, "a", 500))
        assert len(set(nonces)) == 500
        assert asyncio.run(source.next("a")) > max(nonces)
        assert asyncio.run(source.next("b")) <= asyncio.run(source.next("a"))  # b has its own sequence


class TestShared:
    def test_two_replicas_draw_one_increasing_sequence(self, redis_url: str, redis_prefix: str) -> None:
        async def scenario() -> list[int]:
            one, two = connect(redis_url), connect(redis_url)
            try:
                a, b = RedisNonceSource(one, redis_prefix), RedisNonceSource(two, redis_prefix)
                drawn = await asyncio.gather(draw(a, "kraken-key", 200), draw(b, "kraken-key", 200))
                return [n for batch in drawn for n in batch]
            finally:
                await one.delete(f"{redis_prefix}nonce:kraken-key")
                await one.aclose()
                await two.aclose()

        nonces = asyncio.run(scenario())
        assert len(set(nonces)) == 400

    def test_unreachable_redis_fails_closed(self) -> None:
        async def scenario() -> None:
            redis = connect("redis://127.0.0.1:1/0")
            try:
                await RedisNonceSource(redis, "x:").next("k")
            finally:
                await redis.aclose()

        with pytest.raises(NonceStoreUnavailable):
            asyncio.run(scenario())
