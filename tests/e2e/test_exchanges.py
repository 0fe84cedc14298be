"""Each exchange through /proxy and /sign, verified by the simulator the way the exchange would."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from app.proxy.service import adapter_for
from tests.conftest import ADMIN, assert_problem
from tests.e2e.conftest import CASES, Case, call, enrol
from tests.simulator import SimulatorServer

EXCHANGES = sorted(CASES)


@pytest.mark.parametrize("exchange", EXCHANGES)
class TestEachExchange:
    def test_private_read_and_order_are_accepted(self, gateway: TestClient, sim: SimulatorServer,
                                                 exchange: str) -> None:
        case = CASES[exchange]
        headers = enrol(gateway, sim, case)
        for request in (case.read, case.order):
            response = call(gateway, case, headers, request)
            seen = [r for r in sim.config.received if r.path == request[1].split("?")[0]]
            assert seen, f"{exchange} {request[1]} never reached the simulator"
            assert seen[-1].verdict == "accepted", (seen[-1].verdict, seen[-1].detail, response.text)
            assert response.status_code == seen[-1].status < 300  # relayed as the exchange answered
            assert response.content == seen[-1].response_body

    def test_withdrawal_is_refused_before_the_exchange(self, gateway: TestClient, sim: SimulatorServer,
                                                       exchange: str) -> None:
        case = CASES[exchange]
        headers = enrol(gateway, sim, case)
        assert_problem(call(gateway, case, headers, case.withdraw), 403, "permission-denied")
        assert [r for r in sim.config.received if r.path == case.withdraw[1]] == []

    def test_a_clock_15_seconds_behind_is_followed(self, gateway: TestClient, sim: SimulatorServer,
                                                   exchange: str) -> None:
        case = CASES[exchange]
        sim.config.clock_offset_ms = -15_000
        headers = enrol(gateway, sim, case)
        response = call(gateway, case, headers, case.read)
        assert response.status_code < 300, response.text
        assert sim.config.received[-1].verdict == "accepted"

    def test_sign_returns_material_the_exchange_accepts(self, gateway: TestClient, sim: SimulatorServer,
                                                        exchange: str) -> None:
        case = CASES[exchange]
        headers = enrol(gateway, sim, case)
        if not adapter_for(exchange).signature_binds_endpoint:  # /sign needs to know what the key can do
            checked = gateway.post(f"/admin/credentials/{exchange}-e2e/check", headers=ADMIN)
            assert checked.json()["status"] == "connected", checked.text
        method, target, body = case.read
        path, _, query = target.partition("?")
        payload = {"credential": f"{exchange}-e2e", "method": method, "path": path, "query": query,
                   "body": body.decode()}
        if body:
            payload["content_type"] = case.content_type
        signed = gateway.post("/sign", headers=headers, json=payload)
        assert signed.status_code == 200, signed.text
        material = signed.json()
        sent = httpx.request(material["method"], material["url"], headers=material["headers"],
                             content=material["body"].encode() or None)
        assert sim.config.received[-1].verdict == "accepted", sim.config.received[-1].detail
        assert sent.status_code < 300


def test_a_read_only_client_cannot_place_orders(gateway: TestClient, sim: SimulatorServer) -> None:
    case: Case = CASES["okx"]
    headers = enrol(gateway, sim, case, permissions=["read"])
    assert call(gateway, case, headers, case.read).status_code == 200
    assert_problem(call(gateway, case, headers, case.order), 403, "permission-denied")
    assert [r.path for r in sim.config.received if r.path == case.order[1]] == []


def test_an_exchange_without_a_time_endpoint_is_followed_by_its_date_header(
    gateway: TestClient, sim: SimulatorServer,
) -> None:
    # Crypto.com documents no server-time endpoint; its nonce window is 60 s. Its clock runs 90 s behind:
    # the first call is refused for its nonce, teaches signvault the offset (Date), and is resent once.
    case = CASES["cryptocom"]
    sim.config.clock_offset_ms = -90_000
    headers = enrol(gateway, sim, case)
    response = call(gateway, case, headers, case.read)
    assert response.status_code == 200, response.text
    verdicts = [r.verdict for r in sim.config.received if r.path == case.read[1]]
    assert verdicts == ["bad_timestamp", "accepted"]
    assert call(gateway, case, headers, case.read).status_code == 200
    assert sim.config.received[-1].verdict == "accepted"  # no refusal once the offset is known


def test_the_exchanges_ip_whitelist_refusal_passes_through(gateway: TestClient, sim: SimulatorServer) -> None:
    case = CASES["binance"]
    headers = enrol(gateway, sim, case, ip_whitelist={"127.0.0.2"})  # signvault leaves from 127.0.0.1
    response = call(gateway, case, headers, case.read)
    assert response.status_code == 401
    assert response.json()["code"] == -2015  # the exchange's own body, unchanged
    assert sim.config.received[-1].verdict == "ip_not_whitelisted"


def test_text_that_cannot_be_encoded_is_a_400_and_nothing_is_sent(gateway: TestClient, sim: SimulatorServer) -> None:
    # JSON allows a lone surrogate ("\ud800"); Crypto.com's signature is over the params re-encoded.
    case = CASES["cryptocom"]
    headers = enrol(gateway, sim, case)
    body = b'{"id":2,"method":"private/create-order","params":{"instrument_name":"BTC_USDT","client_oid":"\\ud800"}}'
    response = gateway.post("/proxy/cryptocom/exchange/v1/private/create-order", content=body,
                            headers={**headers, "content-type": "application/json"})
    assert_problem(response, 400)
    assert "cannot be encoded" in response.json()["detail"]
    assert not [r for r in sim.config.received if r.path.endswith("create-order")]
