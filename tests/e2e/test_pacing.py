"""Never get the shared IP banned: signvault's own limits, the exchange's back-off, safe retries."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import ADMIN, assert_problem, early_in_an_order_interval, make_settings
from tests.e2e.conftest import CASES, Case, call, enrol
from tests.simulator import EXCHANGE_IDS, SimulatorServer
from tests.tcp_relay import TcpRelay

BINANCE: Case = CASES["binance"]
OKX: Case = CASES["okx"]
KRAKEN: Case = CASES["kraken"]


def reached(sim: SimulatorServer, path: str) -> int:
    return len([r for r in sim.config.received if r.path == path])


def _until(done: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def gateway_for(sim: SimulatorServer, tmp_path: Path, **settings: object) -> TestClient:
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    return TestClient(create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}",
                                               exchange_urls=urls, **settings)))


@contextlib.contextmanager
def okx_through_relay(sim: SimulatorServer, tmp_path: Path) -> Iterator[tuple[TcpRelay, TestClient]]:
    """signvault with OKX reached through a TCP relay that can cut or refuse its connections."""
    host, port = urlsplit(sim.url).hostname, urlsplit(sim.url).port
    assert host is not None and port is not None
    with TcpRelay(host, port) as relay:
        urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
        urls["okx"] = f"http://127.0.0.1:{relay.port}/okx"
        settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls)
        with TestClient(create_app(settings)) as gateway:
            yield relay, gateway


class TestOwnLimits:
    def test_thirty_concurrent_calls_on_a_5_per_second_key(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX, rate_limit="5/second")
        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(lambda _: call(gateway, OKX, headers, OKX.read), range(30)))
        admitted = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert len(admitted) + len(refused) == 30
        assert 1 <= len(admitted) <= 5  # "5 per second" could span two seconds only if the test ran slow
        assert reached(sim, "/api/v5/account/balance") == len(admitted)
        for response in refused:
            assert response.json()["type"] == "urn:signvault:problem:rate-limited"
            assert 1 <= int(response.headers["retry-after"]) <= 1

    def test_two_replicas_on_one_redis_admit_the_limit_together(
        self, sim: SimulatorServer, tmp_path: Path, redis_url: str, redis_prefix: str,
    ) -> None:
        shared = {"redis_url": redis_url, "redis_prefix": redis_prefix}
        with gateway_for(sim, tmp_path, **shared) as one, gateway_for(sim, tmp_path, **shared) as two:
            headers = enrol(one, sim, OKX, rate_limit="6/minute")
            with ThreadPoolExecutor(20) as pool:
                responses = list(pool.map(lambda i: call(one if i % 2 else two, OKX, headers, OKX.read), range(40)))
        assert [r.status_code for r in responses].count(200) == 6
        assert reached(sim, "/api/v5/account/balance") == 6

    def test_the_client_limit_spans_its_credentials(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX)
        client = gateway.get("/admin/clients/bot-okx", headers=ADMIN).json()
        gateway.patch(f"/admin/clients/{client['id']}", headers=ADMIN, json={"rate_limit": "3/minute"})
        statuses = [call(gateway, OKX, headers, OKX.read).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]


def second_binance_key(gateway: TestClient, sim: SimulatorServer,
                       permissions: list[str]) -> tuple[Case, dict[str, str]]:
    """Another Binance key behind the same egress IP, and its client's headers."""
    case = Case("binance", "another-binance-secret-0123456", BINANCE.read, BINANCE.order, BINANCE.withdraw,
                api_key="SECONDKEY00000000", content_type=BINANCE.content_type)
    sim.config.add_account("binance", case.api_key, case.secret)
    credential = gateway.post("/admin/credentials", headers=ADMIN, json={
        "exchange": "binance", "label": "second", "api_key": case.api_key, "api_secret": case.secret}).json()
    token = gateway.post("/admin/clients", headers=ADMIN, json={
        "name": "second-bot", "credentials": [credential["id"]], "permissions": permissions}).json()["token"]
    return case, {"X-Signvault-Token": token}


class TestExchangeBackOff:
    def test_429_then_418_stop_every_key_until_the_exchange_allows(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        first = enrol(gateway, sim, BINANCE)
        second_case, second = second_binance_key(gateway, sim, ["read"])

        sim.config.force("binance", 429, {"code": -1003, "msg": "Too many requests."}, {"Retry-After": "1"},
                         path="/api/v3/account")
        assert call(gateway, BINANCE, first, BINANCE.read).status_code == 429  # the exchange's own answer
        before = reached(sim, "/api/v3/account")
        refused = call(gateway, second_case, second, BINANCE.read)  # another key, same IP: held back
        assert_problem(refused, 429, "exchange-cooling-down")
        assert refused.headers["retry-after"] == "1"
        assert reached(sim, "/api/v3/account") == before

        time.sleep(1.1)
        sim.config.force("binance", 418, {"code": -1003, "msg": "Way too many requests; IP banned."},
                         {"Retry-After": "2"}, path="/api/v3/account")
        assert call(gateway, BINANCE, first, BINANCE.read).status_code == 418
        for headers, case in ((first, BINANCE), (second, second_case)):
            banned = call(gateway, case, headers, BINANCE.read)
            assert_problem(banned, 503, "exchange-ban")
            assert int(banned.headers["retry-after"]) in (1, 2)
        assert reached(sim, "/api/v3/account") == before + 1

        time.sleep(2.1)
        assert call(gateway, second_case, second, BINANCE.read).status_code == 200

    def test_too_many_new_orders_pauses_that_keys_new_orders_only(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        """Binance counts orders per account (-1015): the IP's other keys, and this key's reads and
        cancels, go on while its new orders wait for the window's end."""
        first = enrol(gateway, sim, BINANCE)
        second_case, second = second_binance_key(gateway, sim, ["read", "trade"])
        sim.config.force("binance", 429, {"code": -1015, "msg": "Too many new orders; current limit is 50 orders "
                                          "per 10 SECOND."}, path="/api/v3/order")
        assert call(gateway, BINANCE, first, BINANCE.order).status_code == 429  # the exchange's own answer
        orders = reached(sim, "/api/v3/order")
        held = call(gateway, BINANCE, first, BINANCE.order)
        assert_problem(held, 429, "exchange-cooling-down")
        assert 1 <= int(held.headers["retry-after"]) <= 10
        assert reached(sim, "/api/v3/order") == orders
        assert call(gateway, BINANCE, first, BINANCE.read).status_code == 200
        cancel = call(gateway, BINANCE, first, ("DELETE", "/api/v3/order?symbol=BTCUSDT&orderId=1", b""))
        assert cancel.json().get("type") != "urn:signvault:problem:exchange-cooling-down"
        assert reached(sim, "/api/v3/order") == orders + 1
        assert call(gateway, second_case, second, BINANCE.order).status_code == 200

    def test_orders_that_fill_do_not_spend_binances_order_count(self, gateway: TestClient,
                                                                 sim: SimulatorServer) -> None:
        """Binance counts unfilled orders (100 per 10 s on spot), and takes an order off when it fills.
        signvault follows the count the answers carry: a bot whose orders fill is not stopped at the
        90 it would allow itself of unfilled ones."""
        headers = enrol(gateway, sim, BINANCE)
        market = ("POST", "/api/v3/order", b"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1")
        early_in_an_order_interval()
        assert [call(gateway, BINANCE, headers, market).status_code for _ in range(120)] == [200] * 120

    def test_unfilled_orders_stop_at_signvaults_share_before_the_exchange_refuses(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        headers = enrol(gateway, sim, BINANCE)
        placed = 0
        while (answer := call(gateway, BINANCE, headers, BINANCE.order)).status_code == 200:
            placed += 1  # 90 an interval; more if one ends meanwhile
            assert placed < 300
        assert_problem(answer, 429, "rate-limited")  # signvault's own: the exchange never had to refuse
        assert 1 <= int(answer.headers["retry-after"]) <= 10  # the exchange's interval ends by then
        assert placed >= 90 and reached(sim, "/api/v3/order") == placed

    @pytest.mark.parametrize(("path", "share"), [("/api/v3/orderList/otoco", 30), ("/fapi/v1/batchOrders", 54)])
    def test_order_lists_in_flight_together_stop_before_the_exchange_refuses(
        self, gateway: TestClient, sim: SimulatorServer, path: str, share: int,
    ) -> None:
        """An OTOCO list is three orders to Binance, a futures batch five (in the 10 s count). Lists
        from eight bots at once, each still on its way when another's answer reports the count, are
        counted in full on top of that report, so signvault stops them at its share (90 of spot's
        100, 270 of futures' 300) before the exchange must refuse (-1015)."""
        headers = enrol(gateway, sim, BINANCE)
        placing = ("POST", path, b"symbol=BTCUSDT&workingType=LIMIT&workingSide=BUY")
        early_in_an_order_interval()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: call(gateway, BINANCE, headers, placing), range(share + 18)))
        refused = [answer for answer in answers if answer.status_code != 200]
        for answer in refused:
            assert_problem(answer, 429, "rate-limited")  # signvault's own, never the exchange's
        placed = len(answers) - len(refused)
        assert share * 2 // 3 <= placed <= share and reached(sim, path) == placed

    def test_used_weight_near_the_limit_throttles_before_the_exchange(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        headers = enrol(gateway, sim, BINANCE)
        sim.config.force("binance", 200, {"balances": []}, {"X-MBX-USED-WEIGHT-1M": "5390"}, path="/api/v3/account")
        assert call(gateway, BINANCE, headers, BINANCE.read).status_code == 200
        before = reached(sim, "/api/v3/account")
        throttled = call(gateway, BINANCE, headers, BINANCE.read)  # weight 20 would pass 90% of 6000
        assert_problem(throttled, 429, "rate-limited")
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert reached(sim, "/api/v3/account") == before
        metrics = gateway.get("/metrics").text
        assert 'signvault_exchange_weight_used{exchange="binance"} 5390.0' in metrics
        assert 'signvault_throttled_total{exchange="binance",scope="exchange"}' in metrics


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, callable]]:
    """A Redis of this test's own, so stopping it disturbs nobody else."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        processes.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop() -> None:
        for process in processes:
            process.terminate()
            process.wait(10)

    start()
    yield f"redis://127.0.0.1:{port}/0", (start, stop)
    stop()


def test_redis_stopping_closes_trading_and_recovery_is_automatic(
    sim: SimulatorServer, tmp_path: Path, private_redis: tuple[str, tuple],
) -> None:
    url, (start, stop) = private_redis
    with gateway_for(sim, tmp_path, redis_url=url) as gateway:
        headers = enrol(gateway, sim, OKX)
        assert call(gateway, OKX, headers, OKX.order).status_code == 200
        stop()
        orders_before = reached(sim, "/api/v5/trade/order")
        assert_problem(call(gateway, OKX, headers, OKX.order), 503, "limits-unavailable")
        assert reached(sim, "/api/v5/trade/order") == orders_before
        assert call(gateway, OKX, headers, OKX.read).status_code == 200  # reads go on, on a local share
        start()
        deadline = time.monotonic() + 10
        while call(gateway, OKX, headers, OKX.order).status_code != 200:
            assert time.monotonic() < deadline, "trading did not come back after Redis did"
            time.sleep(0.2)


def test_a_redis_that_stops_answering_costs_one_timeout_not_one_per_call(
    sim: SimulatorServer, tmp_path: Path, redis_url: str, redis_prefix: str,
) -> None:
    target = urlsplit(redis_url)
    with TcpRelay(target.hostname or "127.0.0.1", target.port or 6379) as relay, gateway_for(
            sim, tmp_path, redis_url=f"redis://127.0.0.1:{relay.port}/0", redis_prefix=redis_prefix,
            limits_on_redis_error="local") as gateway:
        binance, kraken = enrol(gateway, sim, BINANCE), enrol(gateway, sim, KRAKEN)
        assert call(gateway, BINANCE, binance, BINANCE.read).status_code == 200
        relay.black_hole()
        assert call(gateway, BINANCE, binance, BINANCE.read).status_code == 200  # after one socket timeout
        took = []
        for _ in range(8):  # over ~3 s: a breaker that let every call try again after 1 s would show
            started = time.monotonic()
            assert call(gateway, BINANCE, binance, BINANCE.read).status_code == 200  # on a local share
            assert_problem(call(gateway, KRAKEN, kraken, KRAKEN.order), 503, "nonce-store-unavailable")
            took.append(time.monotonic() - started)
            time.sleep(0.4)
        assert max(took) < 1.0, took


class TestRetries:
    def test_an_order_that_times_out_is_not_retried(self, sim: SimulatorServer, tmp_path: Path) -> None:
        with gateway_for(sim, tmp_path, upstream_timeout_s=0.5) as gateway:
            headers = enrol(gateway, sim, OKX)
            sim.config.force("okx", delay_seconds=2.0, path="/api/v5/trade/order")
            response = call(gateway, OKX, headers, OKX.order)
        body = assert_problem(response, 504, "exchange-timeout")
        assert "may or may not" in body["detail"]
        assert reached(sim, "/api/v5/trade/order") == 1

    def test_an_order_that_gets_a_5xx_is_not_retried_and_is_reported_unknown(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        headers = enrol(gateway, sim, OKX)
        sim.config.force("okx", 503, "upstream busy", path="/api/v5/trade/order")
        body = assert_problem(call(gateway, OKX, headers, OKX.order), 502, "exchange-outcome-unknown")
        assert "503" in body["detail"] and "may or may not" in body["detail"]
        assert reached(sim, "/api/v5/trade/order") == 1

    def test_a_read_that_gets_a_503_is_retried(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX)
        sim.config.force("okx", 503, "busy", path="/api/v5/account/balance", times=2)
        assert call(gateway, OKX, headers, OKX.read).status_code == 200
        assert reached(sim, "/api/v5/account/balance") == 3


class TestIdempotencyKey:
    def order(self, gateway: TestClient, headers: dict[str, str], key: str, body: bytes | None = None):  # type: ignore[no-untyped-def]
        return gateway.post("/proxy/okx/api/v5/trade/order", content=body or OKX.order[2],
                            headers={**headers, "content-type": "application/json", "Idempotency-Key": key})

    def test_the_same_request_again_gets_the_stored_answer(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX)
        first = self.order(gateway, headers, "order-1")
        again = self.order(gateway, headers, "order-1")
        assert first.status_code == again.status_code == 200
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        assert reached(sim, "/api/v5/trade/order") == 1

    def test_a_different_payload_is_422(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX)
        assert self.order(gateway, headers, "order-2").status_code == 200
        other = self.order(gateway, headers, "order-2", OKX.order[2].replace(b'"sz":"1"', b'"sz":"2"'))
        assert_problem(other, 422, "idempotency-key-reused")
        assert reached(sim, "/api/v5/trade/order") == 1

    def test_a_concurrent_duplicate_is_409_and_only_one_reaches_the_exchange(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        headers = enrol(gateway, sim, OKX)
        sim.config.force("okx", delay_seconds=0.6, path="/api/v5/trade/order")
        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(self.order, gateway, headers, "order-3")]
            time.sleep(0.2)
            futures += [pool.submit(self.order, gateway, headers, "order-3") for _ in range(4)]
            statuses = sorted(f.result().status_code for f in futures)
        assert statuses == [200, 409, 409, 409, 409]
        assert reached(sim, "/api/v5/trade/order") == 1
        assert self.order(gateway, headers, "order-3").headers["idempotent-replayed"] == "true"

    def test_an_unknown_outcome_is_replayed_not_resent(self, sim: SimulatorServer, tmp_path: Path) -> None:
        with gateway_for(sim, tmp_path, upstream_timeout_s=0.5) as gateway:
            headers = enrol(gateway, sim, OKX)
            sim.config.force("okx", delay_seconds=2.0, path="/api/v5/trade/order")
            assert self.order(gateway, headers, "order-4").status_code == 504
            replay = self.order(gateway, headers, "order-4")
        assert_problem(replay, 504, "exchange-timeout")
        assert reached(sim, "/api/v5/trade/order") == 1

    def test_an_order_that_found_no_connection_frees_the_key(self, sim: SimulatorServer, tmp_path: Path) -> None:
        """A 502 that says the order was not sent must not be replayed: the bot's retry goes out."""
        with okx_through_relay(sim, tmp_path) as (relay, gateway):
            headers = enrol(gateway, sim, OKX)
            relay.refuse()
            unsent = self.order(gateway, headers, "order-6")
            assert_problem(unsent, 502, "exchange-unreachable")
            assert "not sent" in unsent.json()["detail"]
            relay.heal()
            retried = self.order(gateway, headers, "order-6")
        assert retried.status_code == 200, retried.text
        assert "idempotent-replayed" not in retried.headers
        assert reached(sim, "/api/v5/trade/order") == 1

    def test_an_order_whose_connection_broke_after_sending_is_replayed_not_resent(
        self, sim: SimulatorServer, tmp_path: Path,
    ) -> None:
        """Cut after the request went out, the exchange may have placed the order: a retry hears so."""
        path = "/api/v5/trade/order"
        with okx_through_relay(sim, tmp_path) as (relay, gateway), ThreadPoolExecutor(1) as pool:
            headers = enrol(gateway, sim, OKX)
            sim.config.force("okx", delay_seconds=1.0, path=path)
            cut = pool.submit(self.order, gateway, headers, "order-7")
            _until(lambda: reached(sim, path) == 1)
            relay.refuse()
            body = assert_problem(cut.result(), 502, "exchange-unreachable")
            assert "may or may not" in body["detail"]
            relay.heal()
            retried = self.order(gateway, headers, "order-7")
        assert_problem(retried, 502, "exchange-unreachable")
        assert retried.headers["idempotent-replayed"] == "true"
        assert reached(sim, path) == 1

    def test_an_order_interrupted_after_sending_is_never_sent_again(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        """A request cancelled in flight (a worker stopping) may have reached the exchange: its key
        must not let the bot's retry place a second order."""
        path = "/api/v5/trade/order"
        headers = enrol(gateway, sim, OKX)
        sim.config.force("okx", delay_seconds=0.5, path=path)

        async def order() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://signvault") as c:
                return await c.post(f"/proxy/okx{path}", content=OKX.order[2], headers={
                    **headers, "content-type": "application/json", "Idempotency-Key": "order-8"})

        assert gateway.portal is not None
        interrupted = gateway.portal.start_task_soon(order)
        _until(lambda: reached(sim, path) == 1)
        interrupted.cancel()
        time.sleep(0.8)  # the exchange has answered the first by now
        retried = self.order(gateway, headers, "order-8")
        assert reached(sim, path) == 1, retried.text
        body = assert_problem(retried, 502, "exchange-outcome-unknown")
        assert "check its status" in body["detail"].lower() and retried.headers["idempotent-replayed"] == "true"

    def test_an_order_cancelled_while_it_waited_for_its_turn_frees_the_key(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        """Queued behind another call on its Kraken key, it was never sent: the bot's retry goes out."""
        method, path, body = KRAKEN.order
        headers = {**enrol(gateway, sim, KRAKEN), "content-type": KRAKEN.content_type}
        sim.config.force("kraken", delay_seconds=0.5, path=path)  # the first order holds the key's turn

        async def order(key: str | None) -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://signvault") as c:
                return await c.request(method, f"/proxy/kraken{path}", content=body,
                                       headers={**headers, **({"Idempotency-Key": key} if key else {})})

        assert gateway.portal is not None
        ahead = gateway.portal.start_task_soon(order, None)
        _until(lambda: reached(sim, path) == 1)
        queued = gateway.portal.start_task_soon(order, "order-9")
        time.sleep(0.1)
        queued.cancel()
        assert ahead.result(5).status_code == 200
        retried = gateway.post(f"/proxy/kraken{path}", content=body, headers={**headers, "Idempotency-Key": "order-9"})
        assert retried.status_code == 200, retried.text
        assert "idempotent-replayed" not in retried.headers
        assert reached(sim, path) == 2

    def test_a_crypto_com_retry_is_the_same_order_whatever_its_auth(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        # ccxt puts a fresh id, nonce and sig (and the placeholder key) in every attempt's body.
        case = CASES["cryptocom"]
        headers = {**enrol(gateway, sim, case), "content-type": "application/json", "Idempotency-Key": "cc-1"}
        path = "/proxy/cryptocom/exchange/v1/private/create-order"

        def attempt(n: int, quantity: str = "1") -> Any:
            body = {"id": n, "method": "private/create-order", "api_key": "placeholder", "nonce": 1700000000000 + n,
                    "sig": f"{n:064x}", "params": {"instrument_name": "BTC_USDT", "side": "BUY", "type": "LIMIT",
                                                   "price": "100", "quantity": quantity}}
            return gateway.post(path, content=json.dumps(body).encode(), headers=headers)

        first, retry = attempt(1), attempt(2)
        assert first.status_code == retry.status_code == 200, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert_problem(attempt(3, quantity="2"), 422, "idempotency-key-reused")
        assert reached(sim, "/exchange/v1/private/create-order") == 1

    def test_a_refusal_before_sending_frees_the_key(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX, rate_limit="1/minute")
        assert self.order(gateway, headers, "x").status_code == 200
        assert_problem(self.order(gateway, headers, "order-5"), 429, "rate-limited")
        client = gateway.get("/admin/clients/bot-okx", headers=ADMIN).json()
        credential = client["credentials"][0]["id"]
        gateway.patch(f"/admin/credentials/{credential}", headers=ADMIN, json={"rate_limit": "100/minute"})
        assert self.order(gateway, headers, "order-5").status_code == 200

    @pytest.mark.parametrize("key", ["", "x" * 129, "has space", "tab\there"])
    def test_bad_keys_are_refused(self, gateway: TestClient, sim: SimulatorServer, key: str) -> None:
        headers = enrol(gateway, sim, OKX)
        assert_problem(self.order(gateway, headers, key), 422)
