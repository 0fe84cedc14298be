"""Whose budget and whose ban a request draws on. The egress IP has one standing at each exchange
host, whichever exchange id reaches it: `binance` sends /fapi paths to fapi.binance.com as
`binanceusdm` does, and Binance counts (and bans) that IP there once."""

from __future__ import annotations

import asyncio

import pytest

from app.clients.grants import GrantedCredential, SigningClient
from app.errors import ProblemError
from app.exchanges.base import UpstreamRequest
from app.limits.limiter import Limiter, LimitsUnavailable
from app.limits.memory import MemoryWindows
from app.limits.redis_store import RedisWindows
from app.proxy import pacing
from app.proxy.service import Prepared, adapter_for
from app.proxy.upstream import ExchangeResponse
from app.redis_client import connect
from tests.conftest import early_in_an_order_interval
from tests.limits.conftest import redis_client

CREDENTIAL = GrantedCredential("c1", "binance", "main", "live", ("read", "trade"), None, True, 1)
CLIENT = SigningClient("b1", "bot", ("read", "trade"), None, (CREDENTIAL,))


def prepared(exchange: str, path: str) -> Prepared:
    adapter = adapter_for(exchange)
    origin = adapter.spec.origin("live", path)
    return Prepared(adapter, UpstreamRequest("GET", path), origin, "read", CLIENT, CREDENTIAL, None)


def binance_order(path: str, method: str = "POST") -> Prepared:
    """A trading request to Binance: a new order unless it is a cancel."""
    return prepared("binance", path)._replace(request=UpstreamRequest(method, path), access="trade")


def ip_budgets(request: Prepared) -> list[tuple[str, int]]:
    return [(b.key, b.limit) for b in pacing.budgets(request) if b.key.startswith("ip:")]


@pytest.mark.parametrize("exchange", ["binance", "binanceusdm"])
def test_futures_paths_draw_on_the_futures_hosts_budget_whichever_id(exchange: str) -> None:
    assert ip_budgets(prepared(exchange, "/fapi/v2/account")) == [("ip:binance@fapi.binance.com:60s", 2160)]
    assert ip_budgets(prepared(exchange, "/api/v3/account")) == [("ip:binance@api.binance.com:60s", 5400)]


def test_a_ban_seen_through_one_id_stops_the_other_at_that_host() -> None:
    limiter = Limiter(MemoryWindows())
    futures, spot = prepared("binanceusdm", "/fapi/v2/account"), prepared("binance", "/fapi/v2/account")
    assert pacing.cooldown_keys(futures)[:2] == pacing.cooldown_keys(spot)[:2]  # the IP's ban and throttle

    async def scenario() -> None:
        await limiter.cool_down(pacing.cooldown_keys(futures)[0], 120.0)  # a 418 seen via binanceusdm
        with pytest.raises(ProblemError):
            await pacing.admit(limiter, spot)
        await pacing.admit(limiter, prepared("binance", "/api/v3/account"))  # another host: not banned there

    asyncio.run(scenario())


def test_other_exchanges_keep_their_own_scopes() -> None:
    assert ip_budgets(prepared("bybit", "/v5/account/wallet-balance")) == [("ip:bybit@api.bybit.com:5s", 540)]


def test_new_orders_keep_a_tenth_of_the_order_budget_for_cancels() -> None:
    """Binance counts orders per account: 100 per 10 s and 200,000 a day on spot, 300 / 1,200 a
    minute on futures. New orders may use 90% of them; a cancel is not an order there."""
    def order(path: str, method: str = "POST", exchange: str = "binance") -> Prepared:
        return prepared(exchange, path)._replace(request=UpstreamRequest(method, path), access="trade")

    def order_budgets(request: Prepared) -> list[tuple[str, int]]:
        return [(b.key, b.limit) for b in pacing.budgets(request) if b.key.startswith("orders:")]

    spot = [("orders:c1@spot:10s", 90), ("orders:c1@spot:86400s", 180000)]
    futures = [("orders:c1@usdm:10s", 270), ("orders:c1@usdm:60s", 1080)]
    assert order_budgets(order("/api/v3/order")) == spot
    assert order_budgets(order("/fapi/v1/order", exchange="binanceusdm")) == futures
    assert order_budgets(order("/api/v3/order", "DELETE")) == []
    # Counted per market, whichever id sends them: ccxt's `binance` trades futures through /fapi,
    # and `binanceusdm` reaches spot through /api.
    assert order_budgets(order("/fapi/v1/order")) == futures
    assert order_budgets(order("/api/v3/order", exchange="binanceusdm")) == spot
    assert order_budgets(order("/dapi/v1/order")) == []  # COIN-M: its own 429s stop the key, no budget


@pytest.mark.parametrize("stopped_via", ["binance", "binanceusdm"])
def test_a_futures_order_limit_stops_the_keys_futures_orders_by_either_id_and_not_its_spot_ones(
        stopped_via: str) -> None:
    """Binance's -1015 ("too many new orders") from futures is about that account's futures orders."""
    limiter = Limiter(MemoryWindows())

    def order(path: str, exchange: str = "binance") -> Prepared:
        return prepared(exchange, path)._replace(request=UpstreamRequest("POST", path), access="trade")

    async def scenario() -> None:
        too_many = b'{"code":-1015,"msg":"Too many new orders; current limit is 300 orders per 10 SECOND."}'
        await pacing.observe(limiter, order("/fapi/v1/order", stopped_via), ExchangeResponse(429, [], too_many), None)
        for exchange in ("binance", "binanceusdm"):
            with pytest.raises(ProblemError, match="slow down"):
                await pacing.admit(limiter, order("/fapi/v1/order", exchange))
            await pacing.admit(limiter, order("/api/v3/order", exchange))

    asyncio.run(scenario())


async def admitted(limiter: Limiter, order: Prepared, most: int) -> list[pacing.Admission | None]:
    """Orders admitted one after another, until one is refused or `most` are."""
    admissions = []
    for _ in range(most):
        try:
            admissions.append(await pacing.admit(limiter, order))
        except ProblemError:
            break
    return admissions


def test_orders_still_on_their_way_count_on_top_of_binances_report() -> None:
    """Binance's count is of the orders it has: one answered first may not count the others yet, so
    its report sets signvault's count to it plus the orders still in flight; once all are answered,
    to the exchange's alone (here 1: the others filled)."""
    limiter = Limiter(MemoryWindows(wall=lambda: 86400.0 * 20_000 + 5))  # 5 s into a 10 s interval
    order = binance_order("/api/v3/order")
    answer = ExchangeResponse(200, [(b"x-mbx-order-count-10s", b"1"), (b"x-mbx-order-count-1d", b"1")], b"{}")

    async def scenario() -> None:
        flying = await admitted(limiter, order, 100)
        assert len(flying) == 90  # 90% of Binance's 100 per 10 s
        pacing.answered(limiter, flying[0])
        await pacing.observe(limiter, order, answer, flying[0])
        assert await admitted(limiter, order, 1) == []  # the other 89 may reach Binance after it: 1 + 89
        for admission in flying[1:]:
            pacing.answered(limiter, admission)
            await pacing.observe(limiter, order, answer, admission)
        assert len(await admitted(limiter, order, 100)) == 89

    asyncio.run(scenario())


def test_a_report_on_an_earlier_order_answered_late_does_not_lower_the_count() -> None:
    """A then B sent; B's answer (which counts A) comes first. A's, which may not count B, comes
    after: it must not take B off."""
    limiter = Limiter(MemoryWindows(wall=lambda: 86400.0 * 20_000 + 5))
    order = binance_order("/api/v3/order")

    def answer(count: int) -> ExchangeResponse:
        return ExchangeResponse(200, [(b"x-mbx-order-count-10s", str(count).encode())], b"{}")

    async def scenario() -> None:
        first, second = await pacing.admit(limiter, order), await pacing.admit(limiter, order)
        for _ in range(80):  # resting orders from before, answered
            admission = await pacing.admit(limiter, order)
            pacing.answered(limiter, admission)
        pacing.answered(limiter, second)
        await pacing.observe(limiter, order, answer(82), second)
        pacing.answered(limiter, first)
        await pacing.observe(limiter, order, answer(81), first)
        # 82, and A as in flight when B was answered: 7 more of 90 (A's own report would give 9).
        assert len(await admitted(limiter, order, 100)) == 7

    asyncio.run(scenario())


@pytest.mark.parametrize(("path", "units"), [("/api/v3/orderList/otoco", 3), ("/api/v3/orderList/oco", 2),
                                             ("/api/v3/order/oco", 2), ("/sapi/v1/margin/order/oto", 2),
                                             ("/api/v3/orderList/opo", 2), ("/api/v3/orderList/opoco", 3)])
def test_an_order_list_spends_as_many_orders_as_binance_counts_in_it(path: str, units: int) -> None:
    """An OCO, OTO or OPO list adds 2 to Binance's unfilled order count and an OTOCO or OPOCO 3 (the
    endpoints' "Unfilled Order Count"): 90 of spot's 100 per 10 s hold 90 // units lists, not 90."""
    limiter = Limiter(MemoryWindows(wall=lambda: 86400.0 * 20_000 + 5))

    async def scenario() -> None:
        assert len(await admitted(limiter, binance_order(path), 100)) == 90 // units

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_futures_batch_counts_five_orders_in_ten_seconds_and_one_in_the_minute(method: str) -> None:
    """/fapi/v1/batchOrders, placing (POST) or modifying (PUT) up to five orders: 5 on the 10 s order
    count, 1 on the minute's, 5 of the IP's weight."""
    batch = binance_order("/fapi/v1/batchOrders", method)
    assert [(b.key, b.limit, b.cost) for b in pacing.budgets(batch) if b.key.startswith(("orders:", "ip:"))] == [
        ("ip:binance@fapi.binance.com:60s", 2160, 5), ("orders:c1@usdm:10s", 270, 5), ("orders:c1@usdm:60s", 1080, 1)]
    limiter = Limiter(MemoryWindows(wall=lambda: 86400.0 * 20_000 + 5))

    async def scenario() -> None:
        assert len(await admitted(limiter, batch, 100)) == 54  # 270 // 5
        assert len(await admitted(limiter, binance_order("/fapi/v1/order"), 100)) == 0  # the 10 s count is full

    asyncio.run(scenario())


def test_an_order_list_in_flight_counts_all_its_orders_on_top_of_binances_report() -> None:
    """An OTOCO still on its way when another order's answer reports Binance's count adds its three
    orders to that count, not one: 80 reported + 3 leaves 7 of 90."""
    limiter = Limiter(MemoryWindows(wall=lambda: 86400.0 * 20_000 + 5))
    single = binance_order("/api/v3/order")
    answer = ExchangeResponse(200, [(b"x-mbx-order-count-10s", b"80")], b"{}")

    async def scenario() -> None:
        flying = await pacing.admit(limiter, binance_order("/api/v3/orderList/otoco"))
        reported = await pacing.admit(limiter, single)
        pacing.answered(limiter, reported)
        await pacing.observe(limiter, single, answer, reported)
        rest = await admitted(limiter, single, 100)
        assert len(rest) == 7
        # Once answered, the list and the rest are in flight no more: the next report is the count.
        for admission in [flying, *rest]:
            pacing.answered(limiter, admission)
        later = await pacing.admit(limiter, binance_order("/api/v3/order/test"))
        pacing.answered(limiter, later)
        await pacing.observe(limiter, single, answer, later)
        assert len(await admitted(limiter, single, 100)) == 10

    asyncio.run(scenario())


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/v3/order/test"), ("POST", "/api/v3/sor/order/test"),
                                              ("PUT", "/api/v3/order/amend/keepPriority")])
def test_requests_binance_counts_no_order_for_pass_a_full_order_count(method: str, path: str) -> None:
    limiter = Limiter(MemoryWindows(wall=lambda: 86400.0 * 20_000 + 5))
    free = binance_order(path, method)

    async def scenario() -> None:
        assert len(await admitted(limiter, binance_order("/api/v3/order"), 100)) == 90
        assert len(await admitted(limiter, free, 3)) == 3
        # Orders from outside signvault: Binance's count is over signvault's 90.
        over = ExchangeResponse(200, [(b"x-mbx-order-count-10s", b"95"), (b"x-mbx-order-count-1d", b"95")], b"{}")
        await pacing.observe(limiter, free, over, None)
        assert len(await admitted(limiter, free, 3)) == 3

    asyncio.run(scenario())


def test_a_request_over_a_replicas_share_is_refused_as_unavailable_while_redis_is_away() -> None:
    """Sixty replicas, Redis unreachable: each takes 270 // 60 = 4 of the futures 10 s order count,
    which no batch of cost 5 ever fits. It is told so (503), not to retry when the interval ends;
    letting each replica take one would put sixty replicas 30 orders over the limit."""
    async def scenario() -> None:
        redis = connect("redis://127.0.0.1:1/0")
        limiter = Limiter(RedisWindows(redis, "share-test:"), on_redis_error="local", replicas=60)
        try:
            with pytest.raises(LimitsUnavailable):
                await pacing.admit(limiter, binance_order("/fapi/v1/batchOrders"))
            assert len(await admitted(limiter, binance_order("/fapi/v1/order"), 10)) == 4
        finally:
            await limiter.breaker.close()
            await redis.aclose()

    asyncio.run(scenario())


def test_an_order_is_in_flight_while_it_is_being_admitted(redis_url: str, redis_prefix: str) -> None:
    """With Redis, admitting an order waits on a round trip, and another order's answer may report
    Binance's count meanwhile. Redis runs the admission first, so the report's count (which sets
    Redis' to it) must hold the order being admitted on top: it is in flight from before its
    admission, not from after."""
    async def scenario() -> None:
        async with redis_client(redis_url, redis_prefix) as redis:
            limiter = Limiter(RedisWindows(redis, redis_prefix))
            single = binance_order("/api/v3/order")
            answered = await pacing.admit(limiter, single)
            pacing.answered(limiter, answered)
            admitting = asyncio.create_task(pacing.admit(limiter, single))
            await asyncio.sleep(0)  # the admission is on its way to Redis
            report = ExchangeResponse(200, [(b"x-mbx-order-count-10s", b"80")], b"{}")
            await pacing.observe(limiter, single, report, answered)
            pacing.answered(limiter, await admitting)
            # 80 and the order that was being admitted: 9 more of 90 (8 if it were counted twice).
            assert len(await admitted(limiter, single, 100)) == 9

    early_in_an_order_interval()
    asyncio.run(scenario())
