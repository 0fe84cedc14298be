"""ccxt, unchanged but for its base URLs and placeholder keys, trading through signvault."""

from __future__ import annotations

from typing import Any

import ccxt
import httpx
import pytest

from tests.conftest import ADMIN
from tests.e2e.conftest import CASES
from tests.simulator import SimulatorServer


def binance_through(signvault: str, token: str) -> Any:
    exchange = ccxt.binance({
        "apiKey": "placeholder-key", "secret": "placeholder-secret",  # never the real ones
        "headers": {"X-Signvault-Token": token},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
    })
    base = f"{signvault}/proxy/binance"
    for name, url in exchange.urls["api"].items():
        if isinstance(url, str):
            exchange.urls["api"][name] = "/".join([base, *url.split("/")[3:]])
    return exchange


def test_ccxt_fetches_the_balance_and_places_an_order(sim: SimulatorServer, signvault: str) -> None:
    case = CASES["binance"]
    sim.config.add_account("binance", case.api_key, case.secret)
    with httpx.Client(base_url=signvault, headers=ADMIN) as admin:
        credential = admin.post("/admin/credentials", json={
            "exchange": "binance", "label": "ccxt", "api_key": case.api_key, "api_secret": case.secret}).json()
        token = admin.post("/admin/clients", json={"name": "ccxt-bot", "credentials": [credential["id"]],
                                                   "permissions": ["read", "trade"]}).json()["token"]
    exchange = binance_through(signvault, token)

    balance = exchange.fetch_balance()
    assert balance["BTC"]["free"] == 0.5 and balance["USDT"]["total"] == 1000

    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    assert order["status"] == "open" and order["symbol"] == "BTC/USDT"

    private = [r for r in sim.config.received if r.path in ("/api/v3/account", "/api/v3/order")]
    assert [r.verdict for r in private] == ["accepted", "accepted"]
    for request in private:
        assert request.headers["x-mbx-apikey"] == case.api_key
        assert "placeholder" not in request.query + request.body.decode()

    # signvault refuses with its own problem+json (ccxt files any 403 under ExchangeNotAvailable).
    with pytest.raises(ccxt.BaseError, match="permission-denied"):
        exchange.withdraw("BTC", 1, "bc1qexampleaddress000000000000000000000")
    assert not [r for r in sim.config.received if "withdraw" in r.path]
