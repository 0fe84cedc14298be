"""While Redis is away, a cooldown one replica opens reaches the others through PostgreSQL's
LISTEN/NOTIFY: a ban seen once is not met again by each replica's own next call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi.testclient import TestClient

from app.limits.limiter import ExchangeBanned, ExchangeCoolingDown, Limiter
from app.limits.notices import CooldownNotices, channel_for, parse_notice
from app.limits.redis_store import RedisWindows
from app.redis_client import connect
from app.settings import Settings
from tests.conftest import _asyncpg_dsn, make_settings
from tests.tcp_relay import TcpRelay

BAN, THROTTLE = "binance@api.binance.com:ip:ban", "okx:key:c1:throttle"


@asynccontextmanager
async def replica(relay: TcpRelay, prefix: str, database_url: str) -> AsyncIterator[Limiter]:
    redis = connect(f"redis://127.0.0.1:{relay.port}/0")
    limiter = Limiter(RedisWindows(redis, prefix), on_redis_error="local", replicas=2)
    notices = CooldownNotices(database_url, channel_for(prefix), limiter.heard_cooldown)
    limiter.notices = notices
    notices.start()
    try:
        await asyncio.wait_for(notices.listening.wait(), 10)
        yield limiter
    finally:
        await notices.close()
        await limiter.breaker.close()
        await redis.aclose()


async def refused(limiter: Limiter, key: str) -> BaseException | None:
    try:
        await limiter.admit([], [key], exchange="binance", trading=False, scopes={})
    except (ExchangeBanned, ExchangeCoolingDown) as exc:
        return exc
    return None


async def eventually(check: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        assert time.monotonic() < deadline, "the other replica never heard of it"
        await asyncio.sleep(0.02)
    return result


def test_a_ban_opened_while_redis_is_away_holds_on_the_other_replicas_at_once(
        relay: TcpRelay, redis_prefix: str, postgres_url: str) -> None:
    async def scenario() -> None:
        async with replica(relay, redis_prefix, postgres_url) as one, \
                replica(relay, redis_prefix, postgres_url) as two:
            relay.refuse()
            assert await refused(one, BAN) is None  # Redis fails: the breaker opens on each
            assert await refused(two, BAN) is None
            await one.cool_down(BAN, 120.0)  # the exchange banned the egress IP
            await one.cool_down(THROTTLE, 30.0)  # and slowed one key
            assert isinstance(await eventually(lambda: refused(two, BAN)), ExchangeBanned)
            assert isinstance(await eventually(lambda: refused(two, THROTTLE)), ExchangeCoolingDown)
            assert 110 < await two.local.cooldown_left(BAN) <= 120

    asyncio.run(scenario())


def test_other_deployments_and_stray_notices_on_the_database_are_not_heard(
        redis_prefix: str, postgres_url: str) -> None:
    async def scenario() -> None:
        heard: list[tuple[str, float]] = []
        notices = CooldownNotices(postgres_url, channel_for(redis_prefix), lambda *n: heard.append(n))
        notices.start()
        await asyncio.wait_for(notices.listening.wait(), 10)
        sender = await asyncpg.connect(_asyncpg_dsn(postgres_url))
        try:
            for payload in ("no-seconds", f"{BAN} inf", f"{BAN} -5", f"{BAN} 99999999", " 5", f"{BAN} nan"):
                await sender.execute("SELECT pg_notify($1, $2)", channel_for(redis_prefix), payload)
            await sender.execute("SELECT pg_notify($1, $2)", channel_for("another:"), f"{BAN} 60")
            await sender.execute("SELECT pg_notify($1, $2)", channel_for(redis_prefix), f"{BAN} 60.000")
            await eventually(lambda: asyncio.sleep(0, heard))
            await asyncio.sleep(0.2)
            assert heard == [(BAN, 60.0)]
        finally:
            await sender.close()
            await notices.close()

    asyncio.run(scenario())


def test_notices_are_read_only_as_written() -> None:
    assert parse_notice(f"{BAN} 12.5") == (BAN, 12.5)
    for junk in ("", "12", f"{BAN} 0", f"{BAN} 1e309", f"{BAN}\x00 5", "a b 5", f"{'k' * 301} 5"):
        assert parse_notice(junk) is None, junk


def test_a_worker_on_postgresql_and_redis_listens_from_its_start(
        tmp_path: Any, postgres_url: str, redis_url: str, redis_prefix: str,
        make_client: Callable[[Settings], TestClient]) -> None:
    settings = make_settings(tmp_path, postgres_url, redis_url=redis_url, redis_prefix=redis_prefix)
    api = make_client(settings)
    notices = api.app.state.signing.limiter.notices  # type: ignore[attr-defined]
    assert notices is not None
    deadline = time.monotonic() + 10
    while not notices.listening.is_set():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_an_endpoint_cooldown_on_the_longest_path_still_fits_a_notice() -> None:
    from app.limits.notices import notice
    from app.proxy.pacing import _endpoint_cooldown_keys

    keys = _endpoint_cooldown_keys("cryptocom", "0" * 36, "DELETE", "/" + "a" * 2047)
    assert len(keys) == 2 and all(parse_notice(notice(key, 1.0)) == (key, 1.0) for key in keys)
