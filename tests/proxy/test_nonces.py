"""Nonces: strictly increasing per key, in one process, across processes sharing Redis, and across restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.migrate import ensure_at_head
from app.proxy import nonces
from app.proxy.nonce_ceilings import NonceCeilings
from app.proxy.nonces import CredentialBusy, NonceSource, NonceStoreUnavailable, RedisNonceSource
from app.redis_client import connect
from tests.conftest import SteppedClock


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


@asynccontextmanager
async def ceilings_on(url: str) -> AsyncIterator[tuple[NonceCeilings, AsyncEngine]]:
    engine = create_engine(url)
    try:
        await ensure_at_head(engine)
        yield NonceCeilings(engine), engine
    finally:
        await engine.dispose()


async def ceiling_rows(engine: AsyncEngine) -> dict[str, tuple[int, datetime]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT scope, ceiling, updated_at FROM nonce_ceilings"))
        return {scope: (int(ceiling), updated) for scope, ceiling, updated in rows}


class TestCeilings:
    """The database keeps a ceiling above every nonce issued, so a sequence that starts afresh (a
    restart, or a Redis that lost it) never starts below nonces already sent."""

    def test_a_restart_after_the_clock_stepped_back_starts_above_every_nonce_sent(
            self, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async def scenario() -> tuple[list[int], list[int]]:
            async with ceilings_on(database_url) as (ceilings, _):
                before = await draw(NonceSource(ceilings=ceilings), "kraken:k", 50)
                monkeypatch.setattr(nonces, "time", SteppedClock(-30))  # NTP stepped it back; then a restart
                return before, await draw(NonceSource(ceilings=ceilings), "kraken:k", 50)

        before, after = asyncio.run(scenario())
        assert min(after) > max(before)
        assert len(set(after)) == 50

    def test_one_write_covers_a_minute_of_nonces_and_the_next_is_written_before_they_run_out(
            self, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async def scenario() -> list[tuple[int, int, datetime]]:
            async with ceilings_on(database_url) as (ceilings, engine):
                source, seen = NonceSource(ceilings=ceilings), []
                for by_s in (0, 0, 30, 59, 61):  # the clock moves on between draws
                    monkeypatch.setattr(nonces, "time", SteppedClock(by_s))
                    nonce = await source.next("kraken:k")
                    ceiling, updated = (await ceiling_rows(engine))["kraken:k"]
                    seen.append((nonce, ceiling, updated))
                return seen

        seen = asyncio.run(scenario())
        assert all(ceiling > nonce for nonce, ceiling, _ in seen)
        assert len({updated for _, _, updated in seen[:4]}) == 1  # one write for the first minute's draws
        assert seen[4][1] > seen[3][1]  # the minute ran out: a higher ceiling was written first

    def test_a_replica_never_lowers_another_replicas_ceiling(self, database_url: str) -> None:
        async def scenario() -> int:
            async with ceilings_on(database_url) as (ceilings, engine):
                assert await ceilings.raise_to("kraken:k", 2_000)
                assert await ceilings.raise_to("kraken:k", 1_000)
                return (await ceiling_rows(engine))["kraken:k"][0]

        assert asyncio.run(scenario()) == 2_000

    def test_without_the_database_nonces_still_rise(self, caplog: pytest.LogCaptureFixture) -> None:
        async def scenario() -> list[int]:
            engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")  # nothing listens there
            try:
                source = NonceSource(ceilings=NonceCeilings(engine))
                return await draw(source, "kraken:k", 20) + [await source.next("kraken:k")]
            finally:
                await engine.dispose()

        drawn = asyncio.run(scenario())
        assert len(set(drawn)) == 21 and drawn[-1] > max(drawn[:-1])
        assert "nonce ceiling" in caplog.text

    def test_a_sequence_redis_lost_starts_above_the_ceiling(self, database_url: str, redis_url: str,
                                                            redis_prefix: str) -> None:
        async def scenario() -> tuple[int, int]:
            redis = connect(redis_url)
            try:
                async with ceilings_on(database_url) as (ceilings, _):
                    # An earlier sequence reached an hour ahead of Redis' clock; Redis has since lost it.
                    ahead = time.time_ns() // 1000 + 3_600_000_000
                    assert await ceilings.raise_to("kraken:k", ahead)
                    await redis.delete(f"{redis_prefix}nonce:kraken:k")
                    return ahead, await RedisNonceSource(redis, redis_prefix, ceilings=ceilings).next("kraken:k")
            finally:
                await redis.delete(f"{redis_prefix}nonce:kraken:k")
                await redis.aclose()

        ahead, nonce = asyncio.run(scenario())
        assert nonce > ahead
