"""Nonces: strictly increasing per key, in one process and across processes sharing Redis."""

from __future__ import annotations

import asyncio

import pytest

from app.proxy.nonces import CredentialBusy, NonceSource, NonceStoreUnavailable, RedisNonceSource
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


async def until_held(holding: asyncio.Event, holder: asyncio.Task[None]) -> None:
    """Until `holder` holds the key's turn; its own error if it fails first (Redis unreachable, say),
    rather than waiting for ever."""
    held = asyncio.ensure_future(holding.wait())
    await asyncio.wait({held, holder}, return_when=asyncio.FIRST_COMPLETED)
    if not holding.is_set():
        held.cancel()
        holder.result()


async def queue_behind_a_holder(first: NonceSource, second: NonceSource, key: str) -> list[str]:
    """`first` holds the key's turn; what `second` gets while it does, and once it lets go."""
    seen: list[str] = []
    holding, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with first.in_order(key):
            holding.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await until_held(holding, holder)
    try:
        async with second.in_order(key):
            seen.append("turn")
    except CredentialBusy as exc:
        seen.append(f"{exc.status} {exc.headers}")
    done.set()
    await holder
    async with second.in_order(key):
        seen.append("turn")
    return seen


class TestTurns:
    def test_a_call_waits_its_turn_on_a_key_only_so_long(self) -> None:
        source = NonceSource(wait_s=0.05)
        assert asyncio.run(queue_behind_a_holder(source, source, "k")) == ["503 {'Retry-After': '1'}", "turn"]

    def test_keys_do_not_wait_for_each_other(self) -> None:
        async def scenario() -> bool:
            source = NonceSource(wait_s=0.05)
            async with source.in_order("a"), source.in_order("b"):
                return True

        assert asyncio.run(scenario())

    def test_across_replicas_too(self, redis_url: str, redis_prefix: str) -> None:
        async def scenario() -> list[str]:
            one, two = connect(redis_url), connect(redis_url)
            try:
                return await queue_behind_a_holder(RedisNonceSource(one, redis_prefix, wait_s=0.3),
                                                   RedisNonceSource(two, redis_prefix, wait_s=0.3), "k")
            finally:
                await one.aclose()
                await two.aclose()

        assert asyncio.run(scenario()) == ["503 {'Retry-After': '1'}", "turn"]


    def test_a_long_call_keeps_its_turn_across_replicas(self, redis_url: str, redis_prefix: str) -> None:
        """The shared turn lapses after `hold_s` only if its holder is gone: a call that takes longer
        (a clock sync, then a slow exchange) renews it, so no other replica's nonce overtakes it."""
        async def scenario() -> list[str]:
            one, two = connect(redis_url), connect(redis_url)
            first = RedisNonceSource(one, redis_prefix, wait_s=5, hold_s=0.3)
            second = RedisNonceSource(two, redis_prefix, wait_s=5, hold_s=0.3)
            seen: list[str] = []
            holding = asyncio.Event()

            async def long_call() -> None:
                async with first.in_order("k"):
                    holding.set()
                    await asyncio.sleep(1.2)
                    seen.append("long call done")

            try:
                task = asyncio.create_task(long_call())
                await until_held(holding, task)
                async with second.in_order("k"):
                    seen.append("next call")
                await task
                return seen
            finally:
                await one.aclose()
                await two.aclose()

        assert asyncio.run(scenario()) == ["long call done", "next call"]

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
