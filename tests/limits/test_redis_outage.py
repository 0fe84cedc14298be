"""Two replicas' limiters on one real Redis, behind a relay that cuts it off and brings it back:
what they admit together across the outage, and what Redis knows once it answers again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from app.errors import ProblemError
from app.limits.budgets import Budget
from app.limits.limiter import ExchangeBanned, Limiter
from app.limits.redis_store import RedisWindows
from app.limits.unshared import Unshared
from app.redis_client import CATCH_UP_TRIES, RedisBreaker, connect
from tests.limits.conftest import redis_client
from tests.tcp_relay import TcpRelay

TEN_A_MINUTE = Budget("cred:outage:60s", 10, 60.0)
BAN = "binance:ip:ban"


@asynccontextmanager
async def replica(relay: TcpRelay, prefix: str) -> AsyncIterator[Limiter]:
    redis = connect(f"redis://127.0.0.1:{relay.port}/0")
    limiter = Limiter(RedisWindows(redis, prefix), on_redis_error="local", replicas=2)
    try:
        yield limiter
    finally:
        await limiter.breaker.close()
        await redis.aclose()


async def admitted(limiter: Limiter, times: int, cooldowns: tuple[str, ...] = ()) -> int:
    count = 0
    for _ in range(times):
        try:
            await limiter.admit([TEN_A_MINUTE], cooldowns, exchange="binance", trading=False, scopes={})
            count += 1
        except ProblemError:
            pass
    return count


async def assert_banned(limiter: Limiter) -> None:
    with pytest.raises(ExchangeBanned):
        await limiter.admit([], [BAN], exchange="binance", trading=False, scopes={})


async def until(condition: Callable[[], bool], timeout_s: float = 10.0, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "Redis was not used again"
        await asyncio.sleep(poll_s)


def run(scenario: Callable[[], Awaitable[None]], redis_url: str, prefix: str) -> None:
    async def with_cleanup() -> None:
        async with redis_client(redis_url, prefix):
            await scenario()

    asyncio.run(with_cleanup())


def test_a_window_spanning_an_outage_admits_its_limit_once(
        relay: TcpRelay, redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        async with replica(relay, redis_prefix) as one, replica(relay, redis_prefix) as two:
            for _ in range(3):  # 6 of 10 spent through Redis
                assert await admitted(one, 1) == 1
                assert await admitted(two, 1) == 1
            relay.refuse()
            # Each replica's share is 5, less its half of the 5 or 6 it saw spent: 2 more each.
            assert await admitted(one, 10) + await admitted(two, 10) == 4

    run(scenario, redis_url, redis_prefix)


def test_what_one_replica_did_without_redis_holds_on_the_others_once_it_is_back(
        relay: TcpRelay, redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        async with replica(relay, redis_prefix) as one:
            relay.refuse()
            assert await admitted(one, 10) == 5  # its share
            await one.cool_down(BAN, 120.0)  # the exchange banned the IP meanwhile
            relay.heal()
            await until(lambda: one.breaker.answering)
            async with replica(relay, redis_prefix) as two:
                assert await admitted(two, 10) == 5  # the other half of the minute's 10
                await assert_banned(two)

    run(scenario, redis_url, redis_prefix)


def test_a_ban_opened_while_redis_is_being_caught_up_holds_on_the_others(
        relay: TcpRelay, redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        async with replica(relay, redis_prefix) as one:
            relay.refuse()
            assert await admitted(one, 3) == 3  # something to catch Redis up on
            relay.slow(0.2)
            relay.heal()
            # The catch-up has taken the ledger and waits for Redis to count it...
            await until(lambda: not one._unshared, poll_s=0.005)
            assert not one.breaker.answering
            await one.cool_down(BAN, 120.0)  # ...when an answer bans the IP
            await until(lambda: one.breaker.answering)
            relay.slow(0)
            async with replica(relay, redis_prefix) as two:
                await assert_banned(two)

    run(scenario, redis_url, redis_prefix)


def test_admissions_leave_the_ledger_after_their_window_and_come_back_in_order() -> None:
    now = [100.0]
    ledger = Unshared(lambda: now[0])
    second, minute = Budget("k:1s", 5, 1.0), Budget("k:60s", 50, 60.0)
    ledger.add([second, minute])
    now[0] += 2
    ledger.add([minute])
    taken = ledger.take()
    assert taken == [(minute, [(2.0, 1), (0.0, 1)])]  # the second's window has run out
    assert not ledger
    ledger.add([minute])
    ledger.give_back(taken)
    assert ledger.take() == [(minute, [(2.0, 1), (0.0, 1), (0.0, 1)])]


def test_a_redis_that_answers_but_refuses_the_catch_up_is_used_again_after_a_few_tries() -> None:
    """Out of memory, or a replica left read-only by a failover: PING answers, writes fail. The
    breaker must not stay open for ever (Kraken calls would get 503 until someone restarts it)."""
    from redis.exceptions import ResponseError

    async def scenario() -> None:
        async def pong() -> None:
            return None

        tries = []

        async def refused() -> None:
            tries.append(1)
            raise ResponseError("OOM command not allowed when used memory > 'maxmemory'")

        breaker = RedisBreaker(pong, retry_s=0.01)
        breaker.when_back(refused)
        breaker.failed()
        await until(lambda: breaker.answering, timeout_s=2)
        assert len(tries) == CATCH_UP_TRIES
        await breaker.close()

    asyncio.run(scenario())
