"""A PostgreSQL that stops answering or refuses: requests fail fast with a 503 problem, never hang
for the kernel's TCP timeout and never come back as a 500; readiness says so. A real PostgreSQL,
behind a relay that fails as networks do (tests/tcp_relay.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from tests.conftest import ADMIN, assert_problem, create_client, create_credential, make_settings
from tests.tcp_relay import TcpRelay

pytestmark = pytest.mark.postgres
TIMEOUT_S = 0.5


@pytest.fixture
def relay(database_url_postgres: str) -> Iterator[TcpRelay]:
    url = make_url(database_url_postgres)
    with TcpRelay(url.host or "127.0.0.1", url.port or 5432) as relay:
        yield relay


@pytest.fixture
def app(tmp_path: Any, database_url_postgres: str, relay: TcpRelay,
        make_client: Callable[..., TestClient]) -> TestClient:
    url = make_url(database_url_postgres).set(host="127.0.0.1", port=relay.port)
    return make_client(make_settings(tmp_path, url.render_as_string(hide_password=False),
                                     database_timeout_s=TIMEOUT_S, upstream_client="httpx"))  # respx's


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    return call(), time.monotonic() - started


@pytest.mark.parametrize("failure", ["black_hole", "refuse"])
def test_admin_and_client_calls_get_a_503_in_bounded_time(app: TestClient, relay: TcpRelay, failure: str) -> None:
    credential = create_credential(app, label="spot")
    client = create_client(app, credentials=[credential["id"]])
    getattr(relay, failure)()
    for call in (lambda: app.get("/admin/credentials", headers=ADMIN),
                 lambda: app.post("/admin/credentials", json={"exchange": "binance", "label": "x", "api_key": "K" * 20,
                                                              "api_secret": "S" * 40}, headers=ADMIN),
                 lambda: app.get("/proxy/binance/api/v3/account", headers={"X-Signvault-Token": client["token"]}),
                 lambda: app.get("/me", headers={"X-Signvault-Token": client["token"]})):
        response, took = timed(call)
        body = assert_problem(response, 503, "database-unavailable")
        assert response.headers["retry-after"] == "5"
        assert "try again" in body["detail"]
        assert took < 6 * TIMEOUT_S  # a pre-ping and a fresh connection at most; the kernel's would be minutes


@pytest.mark.parametrize("failure", ["black_hole", "refuse"])
def test_readiness_says_the_database_is_out_of_reach(app: TestClient, relay: TcpRelay, failure: str) -> None:
    assert app.get("/readyz").status_code == 200
    getattr(relay, failure)()
    response, took = timed(lambda: app.get("/readyz"))
    assert response.status_code == 503 and response.json()["checks"]["database"] == "unreachable"
    assert took < 6 * TIMEOUT_S


BINANCE = "https://api.binance.com"


@pytest.fixture
def exchange() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.get(f"{BINANCE}/api/v3/time").mock(
            side_effect=lambda _: httpx.Response(200, json={"serverTime": int(time.time() * 1000)}))
        yield mock


def test_a_cached_client_goes_on_trading(app: TestClient, relay: TcpRelay, exchange: respx.MockRouter) -> None:
    credential = create_credential(app, label="spot")
    headers = {"X-Signvault-Token": create_client(app, credentials=[credential["id"]])["token"]}
    account = exchange.get(f"{BINANCE}/api/v3/account").respond(json={"balances": []})
    assert app.get("/proxy/binance/api/v3/account", headers=headers).status_code == 200
    relay.black_hole()
    response, took = timed(lambda: app.get("/proxy/binance/api/v3/account", headers=headers))
    assert response.status_code == 200 and account.call_count == 2
    assert took < TIMEOUT_S


@pytest.mark.parametrize("failure", ["black_hole", "refuse"])
def test_an_order_sent_is_answered_even_if_its_idempotency_answer_cannot_be_stored(
        app: TestClient, relay: TcpRelay, exchange: respx.MockRouter, failure: str) -> None:
    credential = create_credential(app, label="spot")
    headers = {"X-Signvault-Token": create_client(app, credentials=[credential["id"]])["token"],
               "Idempotency-Key": "order-1"}

    def filled(_: httpx.Request) -> httpx.Response:
        getattr(relay, failure)()  # the database goes while the exchange fills the order
        return httpx.Response(200, json={"orderId": 7, "status": "FILLED"})

    order = exchange.post(f"{BINANCE}/api/v3/order").mock(side_effect=filled)
    response = app.post("/proxy/binance/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
                            headers=headers)
    assert (response.status_code, response.json()) == (200, {"orderId": 7, "status": "FILLED"})
    assert order.call_count == 1
