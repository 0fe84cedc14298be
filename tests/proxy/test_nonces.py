"""Nonces: strictly increasing per key, in one process, across processes sharing Redis, and across restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.migrate import ensure_at_head
from app.proxy import nonces
from app.proxy.nonce_ceilings import WRITES_PER_S, NonceCeilings
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


async def recorded(engine: AsyncEngine, scope: str) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT ceiling FROM nonce_ceilings WHERE scope = :s"), {"s": scope}))


@asynccontextmanager
async def silent_database() -> AsyncIterator[str]:
    """A PostgreSQL URL whose server accepts connections and never answers: a database that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none"
    finally:
        for writer in held:
            writer.close()
        server.close()


def now_us() -> int:
    return time.time_ns() // 1000


class TestCeilings:
    """The database records the highest nonce each key used, so a sequence that starts afresh (a
    restart, or a Redis that lost it) never starts below nonces already sent."""

    @pytest.mark.parametrize("stop", ["shutdown", "crash"])
    def test_a_restart_after_the_clock_stepped_back_starts_above_every_nonce_sent(
            self, database_url: str, monkeypatch: pytest.MonkeyPatch, stop: str) -> None:
        async def scenario() -> tuple[list[int], list[int]]:
            async with ceilings_on(database_url) as (ceilings, engine):
                before_restart = NonceSource(ceilings=ceilings)
                before = await draw(before_restart, "kraken:k", 50)
                if stop == "shutdown":
                    await before_restart.close()
                else:  # gone without a word, once the record had a moment to follow
                    await asyncio.sleep(3 / WRITES_PER_S)
                monkeypatch.setattr(nonces, "time", SteppedClock(-30))  # NTP stepped it back
                after_restart = NonceSource(ceilings=NonceCeilings(engine))
                return before, await draw(after_restart, "kraken:k", 50)

        before, after = asyncio.run(scenario())
        assert min(after) > max(before)
        assert len(set(after)) == 50

    def test_a_second_process_on_the_key_does_not_run_ahead_of_the_server(self, database_url: str) -> None:
        """Without Redis, a `credentials check` beside the server must not start so far ahead that
        the server's next calls, which follow the clock, go below it."""

        async def scenario() -> tuple[int, int, int, int]:
            async with ceilings_on(database_url) as (ceilings, engine):
                server = NonceSource(ceilings=ceilings)
                await server.next("kraken:k")
                await asyncio.sleep(3 / WRITES_PER_S)  # its record follows
                beside = NonceSource(ceilings=NonceCeilings(engine))
                clock, checked = now_us(), await beside.next("kraken:k")
                await beside.close()
                await asyncio.sleep(0.001)
                return clock, checked, await server.next("kraken:k"), await recorded(engine, "kraken:k")

        clock, checked, server_next, written = asyncio.run(scenario())
        assert checked - clock < 1_000_000  # it follows the clock, as the server does (not a minute ahead)
        assert server_next > checked
        assert written >= checked

    def test_restarts_in_a_row_do_not_run_ahead_of_the_clock(self, database_url: str) -> None:
        async def scenario() -> list[int]:
            leads = []
            async with ceilings_on(database_url) as (_, engine):
                for _ in range(5):
                    source = NonceSource(ceilings=NonceCeilings(engine))
                    clock = now_us()
                    leads.append(await source.next("kraken:k") - clock)
                    await source.close()
            return leads

        assert max(asyncio.run(scenario())) < 1_000_000

    def test_a_database_that_hangs_holds_no_call_for_long(self) -> None:
        async def scenario() -> tuple[float, float, list[int], list[int]]:
            async with silent_database() as url:
                engine = create_engine(url)  # no timeout of its own: the record's read brings one
                source = NonceSource(ceilings=NonceCeilings(engine))
                started = time.monotonic()
                first = await draw(source, "kraken:k", 20)  # the record's first read waits out its timeout
                middle = time.monotonic()
                second = await draw(source, "kraken:k", 20)  # not asked again for a while; writes go behind
                ended = time.monotonic()
                await source.close()
                await engine.dispose()
                return middle - started, ended - middle, first, second

        first_s, second_s, first, second = asyncio.run(scenario())
        assert first_s < 2.0 and second_s < 0.2
        assert len(set(first + second)) == 40 and min(second) > max(first)

    def test_shutdown_lets_the_writes_under_way_finish_and_records_the_last_nonces(
            self, database_url: str) -> None:
        """A write cancelled mid-query on SQLite leaves its connection closing in a task that outlives
        the engine, and held up the worker's exit; close() waits for it instead."""

        async def scenario() -> tuple[set[str], dict[str, int], dict[str, int]]:
            async with ceilings_on(database_url) as (ceilings, engine):
                source, last = NonceSource(ceilings=ceilings), {}
                for _ in range(20):
                    for n in range(30):
                        last[f"kraken:{n}"] = await source.next(f"kraken:{n}")
                    await asyncio.sleep(0.005)
                await source.close()
                left = {repr(t.get_coro()) for t in asyncio.all_tasks() if t is not asyncio.current_task()}
                return left, last, {scope: await recorded(engine, scope) for scope in last}

        left, last, written = asyncio.run(scenario())
        assert left == set()
        assert written == last

    def test_a_replica_never_lowers_another_replicas_record(self, database_url: str) -> None:
        async def scenario() -> int:
            async with ceilings_on(database_url) as (ceilings, engine):
                assert await ceilings.raise_to("kraken:k", 2_000)
                assert await ceilings.raise_to("kraken:k", 1_000)
                return await recorded(engine, "kraken:k")

        assert asyncio.run(scenario()) == 2_000

    def test_a_sequence_redis_lost_starts_above_the_record(self, database_url: str, redis_url: str,
                                                           redis_prefix: str) -> None:
        async def scenario() -> tuple[int, int]:
            redis = connect(redis_url)
            try:
                async with ceilings_on(database_url) as (ceilings, _):
                    # An earlier sequence reached an hour ahead of Redis' clock; Redis has since lost it.
                    ahead = now_us() + 3_600_000_000
                    assert await ceilings.raise_to("kraken:k", ahead)
                    await redis.delete(f"{redis_prefix}nonce:kraken:k")
                    source = RedisNonceSource(redis, redis_prefix, ceilings=ceilings)
                    nonce = await source.next("kraken:k")
                    await source.close()
                    return ahead, nonce
            finally:
                await redis.delete(f"{redis_prefix}nonce:kraken:k")
                await redis.aclose()

        ahead, nonce = asyncio.run(scenario())
        assert nonce > ahead

    def test_a_redis_restored_from_an_older_snapshot_does_not_go_back(self, redis_url: str,
                                                                       redis_prefix: str) -> None:
        async def scenario() -> tuple[int, int]:
            redis, key = connect(redis_url), f"{redis_prefix}nonce:kraken:k"
            try:
                source = RedisNonceSource(redis, redis_prefix)
                await redis.set(key, str(now_us() + 3_600_000_000))  # the sequence led Redis' clock
                drawn = await source.next("kraken:k")
                await redis.set(key, str(now_us()))  # restored from a snapshot taken before
                return drawn, await source.next("kraken:k")
            finally:
                await redis.delete(key)
                await redis.aclose()

        drawn, after = asyncio.run(scenario())
        assert after > drawn
