"""signvault in front of the signature-verifying simulator: the real app, real loopback HTTP."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.server.connection import HttpConnection
from app.settings import Settings
from tests.conftest import ADMIN, make_settings
from tests.servers import ThreadedServer
from tests.simulator import EXCHANGE_IDS, SimulatorServer, new_ec_pem


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    simulator.config.reset()
    return simulator


@pytest.fixture
def gateway(sim: SimulatorServer, tmp_path: Path, make_client: Callable[[Settings], TestClient]) -> TestClient:
    """signvault with every exchange pointed at the simulator (SQLite; the storage tests cover PostgreSQL)."""
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls)
    return make_client(settings)


@pytest.fixture
def signvault(sim: SimulatorServer, tmp_path: Path) -> Iterator[str]:
    """The real signvault on a real socket, for clients that speak HTTP rather than ASGI."""
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls)
    with ThreadedServer(create_app(settings), lifespan="on", name="signvault",
                        http=HttpConnection) as server:  # the protocol `signvault serve` runs
        yield server.url


@dataclass
class Case:
    """One exchange's key and a private read, an order and a withdrawal in its own API."""

    exchange: str
    secret: str
    read: tuple[str, str, bytes]
    order: tuple[str, str, bytes]
    withdraw: tuple[str, str, bytes]
    passphrase: str | None = None
    api_key: str = "E2EAPIKEY0123456789"
    key_type: str = "hmac"
    content_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)


def b64_secret() -> str:
    return base64.b64encode(os.urandom(64)).decode()


JSON_ORDER = b'{"symbol":"BTCUSDT","side":"buy","size":"1","price":"100"}'


def cases() -> list[Case]:
    form = "application/x-www-form-urlencoded"
    return [
        Case("binance", "binance-e2e-secret-0123456789abcdef",
             ("GET", "/api/v3/account?omitZeroBalances=true", b""),
             ("POST", "/api/v3/order", b"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100"),
             ("POST", "/sapi/v1/capital/withdraw/apply", b"coin=BTC&address=x&amount=1"), content_type=form),
        Case("binanceusdm", "binanceusdm-e2e-secret-0123456789",
             ("GET", "/fapi/v2/balance", b""),
             ("POST", "/fapi/v1/order", b"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1"),
             ("POST", "/sapi/v1/capital/withdraw/apply", b"coin=BTC&address=x&amount=1"), content_type=form),
        Case("okx", "okx-e2e-secret", ("GET", "/api/v5/account/balance?ccy=BTC", b""),
             ("POST", "/api/v5/trade/order", b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1"}'),
             ("POST", "/api/v5/asset/withdrawal", b'{"ccy":"BTC","amt":"1","dest":"4","toAddr":"x"}'),
             passphrase="okx-Passphrase1"),
        Case("bybit", "bybit-e2e-secret", ("GET", "/v5/account/wallet-balance?accountType=UNIFIED", b""),
             ("POST", "/v5/order/create", b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}'),
             ("POST", "/v5/asset/withdraw/create", b'{"coin":"BTC","chain":"BTC","address":"x","amount":"1"}')),
        Case("kraken", b64_secret(), ("POST", "/0/private/Balance", b""),
             ("POST", "/0/private/AddOrder", b"ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"),
             ("POST", "/0/private/Withdraw", b"asset=XBT&key=mine&amount=1"), content_type=form),
        Case("coinbase", new_ec_pem(), ("GET", "/api/v3/brokerage/accounts", b""),
             ("POST", "/api/v3/brokerage/orders", b'{"client_order_id":"1","product_id":"BTC-USD","side":"BUY"}'),
             ("POST", "/v2/accounts/abc/transactions", b'{"type":"send","to":"x","amount":"1","currency":"BTC"}'),
             api_key="organizations/org-1/apiKeys/key-1", key_type="ecdsa"),
        Case("coinbaseexchange", b64_secret(), ("GET", "/accounts", b""),
             ("POST", "/orders", b'{"product_id":"BTC-USD","side":"buy","size":"1","price":"100"}'),
             ("POST", "/withdrawals/crypto", b'{"amount":"1","currency":"BTC","crypto_address":"x"}'),
             passphrase="cbx-pass"),
        Case("cryptocom", "cryptocom-e2e-secret",
             ("POST", "/exchange/v1/private/user-balance", b'{"id":1,"method":"private/user-balance","params":{}}'),
             ("POST", "/exchange/v1/private/create-order",
              b'{"id":2,"method":"private/create-order","params":{"instrument_name":"BTC_USDT","side":"BUY",'
              b'"type":"LIMIT","price":"100","quantity":"1"}}'),
             ("POST", "/exchange/v1/private/create-withdrawal",
              b'{"id":3,"method":"private/create-withdrawal","params":{"currency":"BTC","amount":"1","address":"x"}}')),
        Case("kucoin", "kucoin-e2e-secret", ("GET", "/api/v1/accounts?currency=BTC", b""),
             ("POST", "/api/v1/orders", b'{"clientOid":"1","side":"buy","symbol":"BTC-USDT","type":"market","size":"1"}'),
             ("POST", "/api/v1/withdrawals", b'{"currency":"BTC","address":"x","amount":"1"}'),
             passphrase="kucoin-pass"),
        Case("kucoinfutures", "kucoinfutures-e2e-secret", ("GET", "/api/v1/account-overview?currency=USDT", b""),
             ("POST", "/api/v1/orders", b'{"clientOid":"1","side":"buy","symbol":"XBTUSDTM","leverage":"5","size":1}'),
             ("POST", "/api/v1/withdrawals", b'{"currency":"USDT","address":"x","amount":"1"}'),
             passphrase="kucoinf-pass"),
        Case("bitget", "bitget-e2e-secret", ("GET", "/api/v2/spot/account/assets?coin=BTC", b""),
             ("POST", "/api/v2/spot/trade/place-order", JSON_ORDER),
             ("POST", "/api/v2/spot/wallet/withdrawal", b'{"coin":"BTC","transferType":"on_chain","address":"x","size":"1"}'),
             passphrase="bitget-pass"),
        Case("gate", "gate-e2e-secret", ("GET", "/api/v4/spot/accounts?currency=BTC", b""),
             ("POST", "/api/v4/spot/orders", b'{"currency_pair":"BTC_USDT","side":"buy","amount":"1","price":"100"}'),
             ("POST", "/api/v4/withdrawals", b'{"currency":"BTC","address":"x","amount":"1","chain":"BTC"}')),
    ]


CASES = {case.exchange: case for case in cases()}


def enrol(gateway: TestClient, sim: SimulatorServer, case: Case, *, permissions: list[str] | None = None,
          ip_whitelist: set[str] | None = None, rate_limit: str | None = None) -> dict[str, str]:
    """The key at the exchange (simulator) and in signvault; returns a client's headers for it."""
    sim.config.add_account(case.exchange, case.api_key, case.secret, passphrase=case.passphrase,
                           key_type=case.key_type, ip_whitelist=ip_whitelist)
    body: dict[str, Any] = {"exchange": case.exchange, "label": f"{case.exchange}-e2e", "api_key": case.api_key,
                            "api_secret": case.secret, "permissions": permissions or ["read", "trade"]}
    if case.passphrase:
        body["passphrase"] = case.passphrase
    if rate_limit:
        body["rate_limit"] = rate_limit
    created = gateway.post("/admin/credentials", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    client = gateway.post("/admin/clients", headers=ADMIN, json={
        "name": f"bot-{case.exchange}", "credentials": [created.json()["id"]],
        "permissions": permissions or ["read", "trade"]})
    assert client.status_code == 201, client.text
    return {"X-Signvault-Token": client.json()["token"]}


def call(gateway: TestClient, case: Case, headers: dict[str, str], request: tuple[str, str, bytes]) -> Any:
    method, target, body = request
    extra = {"content-type": case.content_type} if body else {}
    return gateway.request(method, f"/proxy/{case.exchange}{target}", content=body or None,
                           headers={**headers, **extra})
