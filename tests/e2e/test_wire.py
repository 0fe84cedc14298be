"""What only a real socket shows: raw path tricks, concurrent nonces, and the audit of proxied calls."""

from __future__ import annotations

import http.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.proxy import nonces
from tests.conftest import ADMIN, SteppedClock, make_settings
from tests.e2e.conftest import CASES, call, enrol
from tests.simulator import EXCHANGE_IDS, SimulatorServer


def raw_get(base: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send the request line exactly as written: no client-side normalisation of the path."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def token(signvault: str, sim: SimulatorServer) -> str:
    case = CASES["binance"]
    sim.config.add_account("binance", case.api_key, case.secret)
    with httpx.Client(base_url=signvault, headers=ADMIN) as admin:
        credential = admin.post("/admin/credentials", json={
            "exchange": "binance", "label": "wire", "api_key": case.api_key, "api_secret": case.secret}).json()
        client = admin.post("/admin/clients", json={"name": "wire-bot", "credentials": [credential["id"]],
                                                    "permissions": ["read", "trade", "withdraw"]})
    return str(client.json()["token"])


@pytest.mark.parametrize("target", [
    "/proxy/binance/https:%2f%2fevil.example/x",
    "/proxy/binance/%2f%2fevil.example/x",
    "/proxy/binance//evil.example/x",
    "/proxy/binance/@evil.example/x",
    "/proxy/binance/api/v3/../../../admin/credentials",
    "/proxy/binance/api/v3/..%2f..%2fadmin",
    "/proxy/binance/%2e%2e/%2e%2e/admin",
    "/proxy/binance/api%5c..%5cadmin",
    "/proxy/binance/api/v3/account%00",
    "/proxy/binance/api/v3/account%0d%0aX-Injected:%201",
    "/proxy/binance/api/v3/account?x=%0d%0aX-Injected:%201",
    "/proxy/binance/http://evil.example/api/v3/account",
    "/proxy/binance/" + "a/" * 1500,
])
def test_path_tricks_never_leave_for_any_host(signvault: str, sim: SimulatorServer, token: str, target: str) -> None:
    status, body = raw_get(signvault, target, {"X-Signvault-Token": token, "Host": "evil.example"})
    assert 400 <= status < 500, (status, body)
    assert b"problem" in body or status == 404
    assert [r.path for r in sim.config.received if r.path != "/api/v3/time"] == []


def test_the_plain_path_still_works_over_the_wire(signvault: str, sim: SimulatorServer, token: str) -> None:
    status, body = raw_get(signvault, "/proxy/binance/api/v3/account", {"X-Signvault-Token": token})
    assert status == 200, body
    assert sim.config.received[-1].verdict == "accepted"


def test_a_proxied_answer_carries_one_date(signvault: str, sim: SimulatorServer, token: str) -> None:
    """The exchange's Date and the server's own would make two: a field HTTP allows once (RFC 9110 §6.6.1)."""
    parts = urlsplit(signvault)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", "/proxy/binance/api/v3/account", headers={"X-Signvault-Token": token})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert len(response.msg.get_all("date") or []) == 1


def test_forty_concurrent_kraken_calls_on_one_key(gateway: TestClient, sim: SimulatorServer) -> None:
    case = CASES["kraken"]
    headers = enrol(gateway, sim, case, rate_limit="100/second")  # about nonces, not Kraken's pacing
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: call(gateway, case, headers, case.read), range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    assert all(r.json()["error"] == [] for r in responses)
    balance = [r for r in sim.config.received if r.path == "/0/private/Balance"]
    assert [r.verdict for r in balance] == ["accepted"] * 40


def test_proxied_calls_are_audited_without_secrets(gateway: TestClient, sim: SimulatorServer) -> None:
    case = CASES["okx"]
    headers = enrol(gateway, sim, case)
    call(gateway, case, headers, case.read)
    call(gateway, case, headers, case.withdraw)  # refused: audited too
    rows = gateway.get("/admin/audit", params={"action": "proxy"}, headers=ADMIN).json()["items"]
    assert [(r["status"], r["method"], r["path"]) for r in rows] == [
        (403, "POST", "/proxy/okx/api/v5/asset/withdrawal"), (200, "GET", "/proxy/okx/api/v5/account/balance")]
    read = rows[1]
    assert (read["actor_kind"], read["actor"], read["exchange"]) == ("client", "bot-okx", "okx")
    assert (read["credential_label"], read["credential_version"]) == ("okx-e2e", 1)
    assert read["latency_ms"] > 0
    everything = gateway.get("/admin/audit", params={"limit": 500}, headers=ADMIN).text
    assert case.secret not in everything and case.api_key not in everything and "ccy=BTC" not in everything


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_requests_are_not_serialised_behind_the_database(
    sim: SimulatorServer, tmp_path: Path, database: str, request: pytest.FixtureRequest,
) -> None:
    """No database transaction or connection is held while the exchange answers: with the exchange
    taking 1.5 s per call, 24 concurrent calls (more than the 15-connection pool) all arrive before the
    first one is answered. Held connections would spread the arrivals by at least one whole delay."""
    url = (f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}" if database == "sqlite"
           else request.getfixturevalue("database_url_postgres"))
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    case = CASES["okx"]
    with TestClient(create_app(make_settings(tmp_path, url, exchange_urls=urls))) as gateway:
        headers = enrol(gateway, sim, case, rate_limit="100/second")  # about concurrency, not OKX's pacing
        call(gateway, case, headers, case.read)  # warm the clock and the key cache
        sim.config.force("okx", delay_seconds=1.5, times=None, path="/api/v5/account/balance")
        with ThreadPoolExecutor(24) as pool:
            responses = list(pool.map(lambda _: call(gateway, case, headers, case.read), range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    arrivals = sorted(r.received_at for r in sim.config.received if r.path == "/api/v5/account/balance")[1:]
    assert arrivals[-1] - arrivals[0] < 1.2, arrivals


def raw_request(base: str, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class TestHostileInput:
    @pytest.fixture
    def okx_token(self, signvault: str, sim: SimulatorServer) -> str:
        case = CASES["okx"]
        sim.config.add_account("okx", case.api_key, case.secret, passphrase=case.passphrase)
        with httpx.Client(base_url=signvault, headers=ADMIN) as admin:
            credential = admin.post("/admin/credentials", json={
                "exchange": "okx", "label": "okx", "api_key": case.api_key, "api_secret": case.secret,
                "passphrase": case.passphrase}).json()
            return str(admin.post("/admin/clients", json={"name": "okx-bot", "credentials": [credential["id"]],
                                                          "permissions": ["read", "trade"]}).json()["token"])

    @pytest.mark.parametrize("query", ['a=b#c', 'a="quoted"', "a=<x>", "a=%22ok%22"])
    def test_query_characters_are_signed_as_sent(self, signvault: str, sim: SimulatorServer, okx_token: str,
                                                 query: str) -> None:
        status, body = raw_request(signvault, "GET", f"/proxy/okx/api/v5/account/balance?{query}",
                                   {"X-Signvault-Token": okx_token})
        assert status == 200, body
        assert sim.config.received[-1].verdict == "accepted"

    def test_non_ascii_header_values_are_refused(self, signvault: str, okx_token: str) -> None:
        status, body = raw_request(signvault, "GET", "/proxy/okx/api/v5/account/balance",
                                   {"X-Signvault-Token": okx_token, "X-Note": "caf\xe9"})
        assert status == 400, body

    @pytest.mark.parametrize("path", ["/api/v5/account/balance\n", "/api\n/v5"])
    def test_sign_refuses_newlines_in_paths(self, signvault: str, okx_token: str, path: str) -> None:
        response = httpx.post(f"{signvault}/sign", headers={"X-Signvault-Token": okx_token},
                              json={"credential": "okx", "method": "GET", "path": path})
        assert response.status_code == 400, response.text

    def test_deeply_nested_json_is_a_400(self, signvault: str, sim: SimulatorServer) -> None:
        case = CASES["cryptocom"]
        sim.config.add_account("cryptocom", case.api_key, case.secret)
        with httpx.Client(base_url=signvault, headers=ADMIN) as admin:
            credential = admin.post("/admin/credentials", json={
                "exchange": "cryptocom", "label": "cdc", "api_key": case.api_key, "api_secret": case.secret}).json()
            token = admin.post("/admin/clients", json={"name": "cdc-bot", "credentials": [credential["id"]],
                                                       "permissions": ["read", "trade"]}).json()["token"]
        nested = b'{"params":' + b'{"a":' * 3000 + b"1" + b"}" * 3001
        status, body = raw_request(signvault, "POST", "/proxy/cryptocom/exchange/v1/private/create-order",
                                   {"X-Signvault-Token": token, "Content-Type": "application/json"}, nested)
        assert status == 400, body

    def test_oversized_bodies_are_refused_before_authentication(self, signvault: str) -> None:
        big = b"x" * (2 << 20)
        for target in ("/sign", "/admin/credentials", "/proxy/okx/api/v5/trade/order"):
            status, body = raw_request(signvault, "POST", target, {"Content-Type": "application/json"}, big)
            assert status == 413, (target, body)
            assert b"body-too-large" in body


def test_two_replicas_keep_kraken_nonces_in_order(
    sim: SimulatorServer, tmp_path: Path, redis_url: str, redis_prefix: str,
) -> None:
    """Two replicas on one Redis draw one nonce sequence and send one call at a time per key."""
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    database = f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}"
    shared = {"exchange_urls": urls, "redis_url": redis_url, "redis_prefix": redis_prefix}
    case = CASES["kraken"]
    with TestClient(create_app(make_settings(tmp_path, database, **shared))) as one, \
            TestClient(create_app(make_settings(tmp_path, database, **shared))) as two:
        headers = enrol(one, sim, case, rate_limit="1000/second")
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda i: call(one if i % 2 else two, case, headers, case.read), range(60)))
    assert all(r.status_code == 200 and r.json()["error"] == [] for r in responses)
    verdicts = [r.verdict for r in sim.config.received if r.path == case.read[1]]
    assert verdicts == ["accepted"] * 60


def test_kraken_accepts_the_first_call_after_a_restart_with_the_clock_stepped_back(
    sim: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without Redis, a worker that restarts after NTP stepped the clock back starts its nonces above
    the ones it sent before (the database's ceiling), so Kraken does not refuse the key meanwhile."""
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}",
                             exchange_urls={exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS})
    case = CASES["kraken"]
    with TestClient(create_app(settings)) as before:
        headers = enrol(before, sim, case)
        assert call(before, case, headers, case.read).json()["error"] == []
    monkeypatch.setattr(nonces, "time", SteppedClock(-30))
    with TestClient(create_app(settings)) as after:
        assert call(after, case, headers, case.read).json()["error"] == []
    assert [r.verdict for r in sim.config.received if r.path == case.read[1]] == ["accepted"] * 2
