"""/sign hands out material the caller sends itself: it must not be worth more than the client's rights."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN, assert_problem
from tests.e2e.conftest import CASES
from tests.simulator import SimulatorServer


def enrol_full_key(gateway: TestClient, sim: SimulatorServer, exchange: str, client_permissions: list[str]) -> dict:
    """A key that may do everything at the exchange and in signvault; only the client is restricted."""
    case = CASES[exchange]
    sim.config.add_account(exchange, case.api_key, case.secret, passphrase=case.passphrase,
                           key_type=case.key_type, can_withdraw=True)
    body = {"exchange": exchange, "label": "k", "api_key": case.api_key, "api_secret": case.secret,
            "permissions": ["read", "trade", "withdraw"]}
    if case.passphrase:
        body["passphrase"] = case.passphrase
    credential = gateway.post("/admin/credentials", headers=ADMIN, json=body).json()
    client = gateway.post("/admin/clients", headers=ADMIN, json={
        "name": "bot", "credentials": [credential["id"]], "permissions": client_permissions}).json()
    return {"X-Signvault-Token": client["token"]}


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_signatures_that_do_not_cover_the_endpoint_need_every_permission(
    gateway: TestClient, sim: SimulatorServer, exchange: str,
) -> None:
    # A Binance or Bybit signature over a harmless read would be just as valid on the withdrawal endpoint.
    headers = enrol_full_key(gateway, sim, exchange, ["read"])
    path = CASES[exchange].read[1].split("?")[0]
    response = gateway.post("/sign", headers=headers, json={"credential": "k", "method": "GET", "path": path,
                                                            "query": "coin=BTC&address=attacker&amount=1"})
    assert_problem(response, 403, "permission-denied")
    assert "/proxy" in response.json()["detail"]
    assert gateway.get(f"/proxy/{exchange}{path}", headers=headers).status_code == 200  # the proxy still serves


def test_a_client_with_every_permission_of_the_key_can_sign(gateway: TestClient, sim: SimulatorServer) -> None:
    headers = enrol_full_key(gateway, sim, "binance", ["read", "trade", "withdraw"])
    response = gateway.post("/sign", headers=headers, json={"credential": "k", "method": "GET",
                                                            "path": "/api/v3/account"})
    assert response.status_code == 200


@pytest.mark.parametrize(("exchange", "path", "split"), [
    ("okx", "/api/v5/asset/withdrawal", 6),
    ("kucoin", "/api/v1/withdrawals", 7),
    ("bitget", "/api/v2/spot/wallet/withdrawal", 6),
    ("coinbaseexchange", "/withdrawals/crypto", 11),
])
def test_a_path_tail_cannot_hide_in_the_body(gateway: TestClient, sim: SimulatorServer, exchange: str,
                                             path: str, split: int) -> None:
    # timestamp + METHOD + path + body has no separator: "/asset/with" + 'drawal{...}' signs like a withdrawal.
    headers = enrol_full_key(gateway, sim, exchange, ["read", "trade"])
    head, tail = path[:-split], path[-split:]
    body = tail + CASES[exchange].withdraw[2].decode()
    for route in ("/sign", f"/proxy/{exchange}{head}"):
        if route == "/sign":
            response = gateway.post(route, headers=headers, json={"credential": "k", "method": "POST", "path": head,
                                                                  "body": body, "content_type": "application/json"})
        else:
            response = gateway.post(route, headers={**headers, "content-type": "application/json"},
                                    content=body.encode())
        assert_problem(response, 400, "bad-exchange-request")
    assert not [r for r in sim.config.received if r.path.startswith(head)]


def test_sign_returns_non_ascii_bodies_as_sent(gateway: TestClient, sim: SimulatorServer) -> None:
    headers = enrol_full_key(gateway, sim, "okx", ["read", "trade"])
    body = '{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1","tag":"été"}'
    signed = gateway.post("/sign", headers=headers, json={"credential": "k", "method": "POST",
                                                          "path": "/api/v5/trade/order", "body": body,
                                                          "content_type": "application/json"}).json()
    assert signed["body"] == body
    sent = httpx.post(signed["url"], headers=signed["headers"], content=signed["body"].encode())
    assert sent.status_code == 200
    assert sim.config.received[-1].verdict == "accepted"


def test_a_label_used_on_two_exchanges_names_this_exchanges_key(gateway: TestClient, sim: SimulatorServer) -> None:
    """Labels are unique per exchange: /proxy picks the one for its exchange; /sign, which names no
    exchange but in the credential, asks which."""
    ids = []
    for exchange in ("binance", "okx"):
        case = CASES[exchange]
        sim.config.add_account(exchange, case.api_key, case.secret, passphrase=case.passphrase)
        body = {"exchange": exchange, "label": "main", "api_key": case.api_key, "api_secret": case.secret,
                "permissions": ["read", "trade"], **({"passphrase": case.passphrase} if case.passphrase else {})}
        ids.append(gateway.post("/admin/credentials", headers=ADMIN, json=body).json()["id"])
    token = gateway.post("/admin/clients", headers=ADMIN, json={
        "name": "two-venues", "credentials": ids, "permissions": ["read", "trade"]}).json()["token"]
    headers = {"X-Signvault-Token": token, "X-Signvault-Credential": "main"}
    for exchange in ("okx", "binance"):
        method, target, _ = CASES[exchange].read
        response = gateway.request(method, f"/proxy/{exchange}{target}", headers=headers)
        assert response.status_code == 200, response.text
        assert sim.config.received[-1].api_key == CASES[exchange].api_key
    sign = {"method": "GET", "path": "/api/v5/account/balance"}
    ambiguous = gateway.post("/sign", headers={"X-Signvault-Token": token}, json={"credential": "main", **sign})
    assert "binance, okx" in assert_problem(ambiguous, 422)["detail"]
    named = gateway.post("/sign", headers={"X-Signvault-Token": token}, json={"credential": "okx:main", **sign})
    assert named.status_code == 200, named.text
    assert named.json()["url"].startswith(sim.url_for("okx"))
