"""`/proxy` and `/sign` on the real app, with the exchange faked by respx."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from app.main import create_app
from app.server.connection import HttpConnection
from app.settings import Settings
from tests.conftest import (
    ADMIN,
    assert_problem,
    create_client,
    create_credential,
    early_in_an_order_interval,
    random_secret,
)
from tests.servers import ThreadedServer

BINANCE = "https://api.binance.com"
SECRET = "binance-secret-for-proxy-tests-0123456789"
API_KEY = "BINANCEAPIKEY0123456789"


@pytest.fixture
def exchange() -> Any:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.get(f"{BINANCE}/api/v3/time").respond(json={"serverTime": 0})  # replaced per test when it matters
        yield mock


@pytest.fixture
def bot(api: TestClient) -> dict[str, Any]:
    credential = create_credential(api, label="spot", api_key=API_KEY, api_secret=SECRET)
    client = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
    return {"credential": credential, "headers": {"X-Signvault-Token": client["token"]}}


def server_time_now(exchange: Any) -> None:
    exchange.get(f"{BINANCE}/api/v3/time").mock(
        side_effect=lambda _: httpx.Response(200, json={"serverTime": int(time.time() * 1000)})
    )


def binance_signature_ok(request: httpx.Request, secret: str = SECRET) -> bool:
    query = request.url.query.decode()
    signed, _, signature = query.rpartition("&signature=")
    payload = signed + request.content.decode()
    if not signature:
        body, _, signature = request.content.decode().rpartition("&signature=")
        payload = query + body
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest() == signature


class TestBinanceProxy:
    def test_private_read_is_signed_afresh(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        server_time_now(exchange)
        account = exchange.get(f"{BINANCE}/api/v3/account").respond(
            json={"balances": []}, headers={"X-MBX-USED-WEIGHT-1M": "20"}
        )
        response = api.get(
            "/proxy/binance/api/v3/account?omitZeroBalances=true&timestamp=1&signature=placeholder",
            headers={**bot["headers"], "X-MBX-APIKEY": "placeholder-key"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"balances": []}
        assert response.headers["x-mbx-used-weight-1m"] == "20"
        sent = account.calls.last.request
        assert sent.headers["x-mbx-apikey"] == API_KEY
        params = parse_qsl(sent.url.query.decode())
        assert [k for k, _ in params] == ["omitZeroBalances", "timestamp", "signature"]
        assert "placeholder" not in sent.url.query.decode()
        assert binance_signature_ok(sent)
        assert "x-signvault-token" not in sent.headers

    def test_the_access_line_says_how_long_the_exchange_took_below_a_millisecond(
            self, api: TestClient, exchange: Any, bot: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
        server_time_now(exchange)
        exchange.get(f"{BINANCE}/api/v3/account").respond(json={"balances": []})
        with caplog.at_level(logging.INFO, logger="signvault.access"):
            assert api.get("/proxy/binance/api/v3/account", headers=bot["headers"]).status_code == 200
        line = next(r for r in caplog.records if r.name == "signvault.access" and r.status == 200)
        assert 0 < line.upstream_ms < line.latency_ms  # respx answers in microseconds: not rounded to 0

    def test_order_in_a_form_body_is_signed_in_the_body(
        self, api: TestClient, exchange: Any, bot: dict[str, Any]
    ) -> None:
        server_time_now(exchange)
        order = exchange.post(f"{BINANCE}/api/v3/order").respond(json={"orderId": 1})
        response = api.post(
            "/proxy/binance/api/v3/order",
            content=b"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
            headers={**bot["headers"], "content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
        sent = order.calls.last.request
        assert sent.content.startswith(b"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=")
        assert binance_signature_ok(sent)

    def test_public_market_data_goes_unsigned(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        ticker = exchange.get(f"{BINANCE}/api/v3/ticker/price").respond(json={"price": "1"})
        assert api.get("/proxy/binance/api/v3/ticker/price?symbol=BTCUSDT", headers=bot["headers"]).status_code == 200
        sent = ticker.calls.last.request
        assert "x-mbx-apikey" not in sent.headers and "signature" not in sent.url.query.decode()

    def test_futures_paths_go_to_the_futures_host(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        exchange.get("https://fapi.binance.com/fapi/v1/time").respond(json={"serverTime": 0})
        balance = exchange.get("https://fapi.binance.com/fapi/v2/balance").respond(json=[])
        assert api.get("/proxy/binance/fapi/v2/balance", headers=bot["headers"]).status_code == 200
        assert balance.called

    def test_exchange_errors_pass_through_unchanged(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        server_time_now(exchange)
        body = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
        exchange.post(f"{BINANCE}/api/v3/order").respond(400, json=body)
        response = api.post(
            "/proxy/binance/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=9", headers=bot["headers"]
        )
        assert (response.status_code, response.json()) == (400, body)


class TestRefusals:
    @pytest.fixture(autouse=True)
    def _no_calls(self, exchange: Any) -> Any:
        yield
        assert [c.request.url.path for c in exchange.calls if c.request.url.path != "/api/v3/time"] == []

    def test_withdrawal_needs_withdraw_permission(self, api: TestClient, bot: dict[str, Any]) -> None:
        response = api.post(
            "/proxy/binance/sapi/v1/capital/withdraw/apply?coin=BTC&amount=1&address=x", headers=bot["headers"]
        )
        assert_problem(response, 403, "permission-denied")

    def test_read_only_client_cannot_trade(self, api: TestClient, bot: dict[str, Any]) -> None:
        reader = create_client(api, credentials=[bot["credential"]["id"]], permissions=["read"])
        response = api.post(
            "/proxy/binance/api/v3/order?symbol=BTCUSDT", headers={"X-Signvault-Token": reader["token"]}
        )
        assert_problem(response, 403, "permission-denied")

    def test_read_only_credential_cannot_trade(self, api: TestClient) -> None:
        credential = create_credential(api, permissions=["read"])
        client = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        response = api.delete(
            "/proxy/binance/api/v3/order?symbol=BTCUSDT", headers={"X-Signvault-Token": client["token"]}
        )
        assert_problem(response, 403, "permission-denied")

    def test_disabled_credential_is_refused(self, api: TestClient, bot: dict[str, Any]) -> None:
        api.patch(f"/admin/credentials/{bot['credential']['id']}", headers=ADMIN, json={"enabled": False})
        assert_problem(api.get("/proxy/binance/api/v3/account", headers=bot["headers"]), 403)

    def test_another_clients_credential_is_refused(self, api: TestClient, bot: dict[str, Any]) -> None:
        other = create_credential(api, label="someone-elses")
        for ref in (other["id"], "someone-elses", "binance:someone-elses", "deleted-or-never-existed"):
            response = api.get(
                "/proxy/binance/api/v3/account", headers={**bot["headers"], "X-Signvault-Credential": ref}
            )
            assert_problem(response, 403, "credential-not-granted")

    def test_unknown_exchange_and_missing_token(self, api: TestClient, bot: dict[str, Any]) -> None:
        assert_problem(api.get("/proxy/mtgox/api/v3/account", headers=bot["headers"]), 404, "unknown-exchange")
        assert_problem(api.get("/proxy/binance/api/v3/account"), 401)

    # Dot segments ("a/../b") are resolved by the HTTP client before sending; the real-server test sends them raw.
    @pytest.mark.parametrize(
        "path",
        [
            "https:%2f%2fevil.example/x",
            "%2f%2fevil.example",
            "@evil.example/x",
            "api/..%2f..%2fx",
            "api/%2e%2e/x",
            "api%5cx",
            "api/%00",
            "api//v3",
            "api/v3/%252e%252e/x",
            "api/v3/a:b",
        ],
    )
    def test_ssrf_paths_are_refused(self, api: TestClient, bot: dict[str, Any], path: str) -> None:
        response = api.get(f"/proxy/binance/{path}", headers=bot["headers"])
        assert response.status_code in (400, 404), response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    def test_duplicate_parameters_are_refused(self, api: TestClient, bot: dict[str, Any]) -> None:
        response = api.post(
            "/proxy/binance/api/v3/order?symbol=BTCUSDT&quantity=1",
            content=b"quantity=100",
            headers={**bot["headers"], "content-type": "application/x-www-form-urlencoded"},
        )
        assert_problem(response, 400, "bad-exchange-request")

    @pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
    def test_duplicates_in_a_kraken_body_are_refused_whatever_its_label(self, api: TestClient,
                                                                       content_type: str) -> None:
        # Kraken sends any body as a form: volume=1&volume=250 would reach it signed.
        credential = create_credential(api, exchange="kraken", label="kr", api_key="KRAKENKEY001",
                                       api_secret="a3Jha2VuLXNlY3JldA==")
        client = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        response = api.post("/proxy/kraken/0/private/AddOrder", content=b"pair=XBTUSD&volume=1&volume=250",
                            headers={"X-Signvault-Token": client["token"], "content-type": content_type})
        assert_problem(response, 400, "bad-exchange-request")

    def test_oversized_body_is_413(self, api: TestClient, bot: dict[str, Any]) -> None:
        response = api.post("/proxy/binance/api/v3/order", content=b"x" * (1 << 20 + 1), headers=bot["headers"])
        assert_problem(response, 413, "body-too-large")


class TestHeadersAndFaults:
    def test_host_and_forwarding_headers_do_not_redirect(
        self, api: TestClient, exchange: Any, bot: dict[str, Any]
    ) -> None:
        server_time_now(exchange)
        account = exchange.get(f"{BINANCE}/api/v3/account").respond(json={})
        tricks = {
            "X-Forwarded-Host": "evil.example",
            "X-Original-URL": "https://evil.example/",
            "Connection": "close, X-MBX-APIKEY",
            "X-MBX-APIKEY": "stolen",
            "Forwarded": "host=evil.example",
        }
        assert api.get("/proxy/binance/api/v3/account", headers={**bot["headers"], **tricks}).status_code == 200
        sent = account.calls.last.request
        assert sent.url.host == "api.binance.com"
        assert sent.headers["x-mbx-apikey"] == API_KEY
        for name in ("x-forwarded-host", "x-original-url", "forwarded"):
            assert name not in sent.headers

    def test_redirects_are_not_followed(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        server_time_now(exchange)
        exchange.get(f"{BINANCE}/api/v3/account").respond(302, headers={"Location": "https://evil.example/steal"})
        response = api.get("/proxy/binance/api/v3/account", headers=bot["headers"], follow_redirects=False)
        assert response.status_code == 302
        assert not any(c.request.url.host == "evil.example" for c in exchange.calls)

    def test_timeout_is_504_naming_the_exchange_and_the_doubt(
        self, api: TestClient, exchange: Any, bot: dict[str, Any]
    ) -> None:
        server_time_now(exchange)
        order = exchange.post(f"{BINANCE}/api/v3/order").mock(side_effect=httpx.ReadTimeout("slow"))
        body = assert_problem(api.post("/proxy/binance/api/v3/order?symbol=X", headers=bot["headers"]), 504)
        assert "Binance" in body["detail"] and "may or may not" in body["detail"]
        assert order.call_count == 1  # never retried

    def test_connection_error_is_502(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        server_time_now(exchange)
        exchange.get(f"{BINANCE}/api/v3/account").mock(side_effect=httpx.ConnectError("refused"))
        response = api.get("/proxy/binance/api/v3/account", headers=bot["headers"])
        assert_problem(response, 502, "exchange-unreachable")

    @pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow handshake"),
                                         httpx.PoolTimeout("no free connection")])
    def test_an_order_that_never_left_says_so_not_may_or_may_not(
        self, api: TestClient, exchange: Any, bot: dict[str, Any], failure: Exception
    ) -> None:
        server_time_now(exchange)
        exchange.post(f"{BINANCE}/api/v3/order").mock(side_effect=failure)
        body = assert_problem(api.post("/proxy/binance/api/v3/order?symbol=X", headers=bot["headers"]), 502)
        assert "was not sent" in body["detail"] and "may or may not" not in body["detail"]

    def test_timestamp_refusal_resyncs_and_resends_once(
        self, api: TestClient, exchange: Any, bot: dict[str, Any]
    ) -> None:
        server_time_now(exchange)
        account = exchange.get(f"{BINANCE}/api/v3/account")
        account.side_effect = [
            httpx.Response(
                400, json={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
            ),
            httpx.Response(200, json={"ok": True}),
        ]
        response = api.get("/proxy/binance/api/v3/account", headers=bot["headers"])
        assert (response.status_code, response.json()) == (200, {"ok": True})
        assert account.call_count == 2
        assert exchange.routes[0].call_count >= 2  # the clock was synced again before the resend


def kraken_balance(exchange: Any, secret: str) -> list[int]:
    """Kraken's Balance, checking each signature and that nonces rise; the nonces it accepted.
    Every other request takes 3 ms longer on its way: two sent at once can arrive out of order."""
    exchange.get("https://api.kraken.com/0/public/Time").respond(
        json={"error": [], "result": {"unixtime": int(time.time())}}
    )
    seen: list[int] = []
    sent = itertools.count()

    async def balance(request: httpx.Request) -> httpx.Response:
        if next(sent) % 2 == 0:
            await asyncio.sleep(0.003)
        nonce = int(dict(parse_qsl(request.content.decode()))["nonce"])
        digest = hashlib.sha256(str(nonce).encode() + request.content).digest()
        expected = base64.b64encode(
            hmac.new(base64.b64decode(secret), b"/0/private/Balance" + digest, hashlib.sha512).digest()
        ).decode()
        if request.headers["api-sign"] != expected or (seen and nonce <= seen[-1]):
            return httpx.Response(200, json={"error": ["EAPI:Invalid nonce"]})
        seen.append(nonce)
        return httpx.Response(200, json={"error": [], "result": {}})

    exchange.post("https://api.kraken.com/0/private/Balance").mock(side_effect=balance)
    return seen


KRAKEN_ORDER = b"pair=XBTUSD&type=buy&ordertype=market&volume=1&nonce=1"


class SlowKrakenOrders:
    """Kraken's AddOrder, holding every order until `release` is set (the exchange takes its time);
    `sent` counts the orders that arrived, `keys` their API keys in order."""

    def __init__(self, exchange: Any) -> None:
        exchange.get("https://api.kraken.com/0/public/Time").respond(
            json={"error": [], "result": {"unixtime": int(time.time())}})
        self.sent, self.release = threading.Semaphore(0), threading.Event()
        self.keys: list[str] = []
        exchange.post("https://api.kraken.com/0/private/AddOrder").mock(side_effect=self._add_order)

    async def _add_order(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers["api-key"])
        self.sent.release()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return httpx.Response(200, json={"error": [], "result": {"txid": [f"T-{len(self.keys)}"]}})


class TestKrakenNonces:
    def test_forty_concurrent_calls_get_increasing_nonces_in_order(self, api: TestClient, exchange: Any) -> None:
        secret = base64.b64encode(os.urandom(64)).decode()
        # A generous limit: this test is about nonces (Kraken's default pacing would admit 15).
        credential = create_credential(api, exchange="kraken", api_secret=secret, rate_limit="100/second")
        client = create_client(api, credentials=[credential["id"]])
        seen = kraken_balance(exchange, secret)
        headers = {"X-Signvault-Token": client["token"], "content-type": "application/x-www-form-urlencoded"}
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: api.post("/proxy/kraken/0/private/Balance", content=b"nonce=1", headers=headers).json(),
                    range(40),
                )
            )
        assert all(a == {"error": [], "result": {}} for a in answers)
        assert len(seen) == 40 and seen == sorted(set(seen))

    def test_two_credentials_holding_one_key_draw_from_its_one_sequence(self, api: TestClient, exchange: Any) -> None:
        """The same Kraken key added twice (for two teams, say): Kraken counts its nonces once."""
        key, secret = "K" + random_secret(40), base64.b64encode(os.urandom(64)).decode()
        credentials = [create_credential(api, exchange="kraken", api_key=key, api_secret=secret,
                                         rate_limit="100/second")["id"] for _ in range(2)]
        client = create_client(api, credentials=credentials)
        seen = kraken_balance(exchange, secret)

        def call(n: int) -> Any:
            headers = {"X-Signvault-Token": client["token"], "X-Signvault-Credential": credentials[n % 2],
                       "content-type": "application/x-www-form-urlencoded"}
            return api.post("/proxy/kraken/0/private/Balance", content=b"nonce=1", headers=headers).json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(40)))
        assert all(a == {"error": [], "result": {}} for a in answers), answers
        assert len(seen) == 40 and seen == sorted(set(seen))

    @pytest.mark.parametrize(("change", "status"), [
        ("disable", 403), ("delete", 403), ("read-only client", 403), ("revoke", 401), ("rotate token", 401)])
    def test_an_order_queued_on_its_key_is_not_sent_once_its_grant_is_gone(
            self, api: TestClient, exchange: Any, change: str, status: int) -> None:
        credential = create_credential(api, exchange="kraken", api_secret=base64.b64encode(os.urandom(64)).decode())
        client = create_client(api, credentials=[credential["id"]])
        orders = SlowKrakenOrders(exchange)
        headers = {"X-Signvault-Token": client["token"], "content-type": "application/x-www-form-urlencoded"}
        order = KRAKEN_ORDER
        changes = {
            "disable": lambda: api.patch(f"/admin/credentials/{credential['id']}", json={"enabled": False},
                                         headers=ADMIN),
            "delete": lambda: api.delete(f"/admin/credentials/{credential['id']}", headers=ADMIN),
            "read-only client": lambda: api.patch(f"/admin/clients/{client['id']}", json={"permissions": ["read"]},
                                                  headers=ADMIN),
            "revoke": lambda: api.delete(f"/admin/clients/{client['id']}", headers=ADMIN),
            "rotate token": lambda: api.post(f"/admin/clients/{client['id']}/rotate-token", headers=ADMIN),
        }
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(api.post, "/proxy/kraken/0/private/AddOrder", content=order, headers=headers)
            assert orders.sent.acquire(timeout=10)
            queued = pool.submit(api.post, "/proxy/kraken/0/private/AddOrder", content=order, headers=headers)
            time.sleep(0.3)  # it is authorised and waits for the key's turn
            assert changes[change]().status_code < 300
            orders.release.set()
            assert first.result().status_code == 200
            assert_problem(queued.result(), status)
        assert len(orders.keys) == 1

    def test_an_order_whose_bot_hung_up_while_it_waited_for_its_turn_is_not_sent(
            self, settings: Settings, exchange: Any) -> None:
        """A bot that gave up (its own timeout) may send the order again: the one it gave up on must
        not go out behind it. A real server and socket: the hang-up is a closed connection."""
        with ThreadedServer(create_app(settings), lifespan="on", http=HttpConnection) as server, \
                httpx.Client(base_url=server.url, timeout=30) as api:
            exchange.route(url__startswith=server.url).pass_through()
            credential = create_credential(api, exchange="kraken",
                                           api_secret=base64.b64encode(os.urandom(64)).decode())
            client = create_client(api, credentials=[credential["id"]])
            orders = SlowKrakenOrders(exchange)
            headers = {"X-Signvault-Token": client["token"], "content-type": "application/x-www-form-urlencoded"}
            order = KRAKEN_ORDER
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(api.post, "/proxy/kraken/0/private/AddOrder", content=order, headers=headers)
                assert orders.sent.acquire(timeout=10)
                with socket.create_connection(("127.0.0.1", server.port)) as bot:
                    bot.sendall(b"POST /proxy/kraken/0/private/AddOrder HTTP/1.1\r\nHost: signvault\r\n"
                                + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
                                + b"Content-Length: %d\r\n\r\n" % len(order) + order)
                    time.sleep(0.3)  # authorised, it waits for the key's turn; then its bot gives up
                    # A bot that waits behind it, still connected: its call must go out.
                    patient = pool.submit(api.post, "/proxy/kraken/0/private/AddOrder", content=order,
                                          headers=headers)
                    time.sleep(0.3)
                time.sleep(0.2)
                orders.release.set()
                assert first.result().status_code == 200 and patient.result().status_code == 200
        assert len(orders.keys) == 2  # the first and the patient one; the abandoned one, ahead of it, not

    def test_an_order_queued_while_its_key_is_rotated_goes_out_under_the_new_key(
            self, api: TestClient, exchange: Any) -> None:
        credential = create_credential(api, exchange="kraken", api_secret=base64.b64encode(os.urandom(64)).decode())
        client = create_client(api, credentials=[credential["id"]])
        orders = SlowKrakenOrders(exchange)
        headers = {"X-Signvault-Token": client["token"], "content-type": "application/x-www-form-urlencoded"}
        order = KRAKEN_ORDER
        new_key = "K" + random_secret(40)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(api.post, "/proxy/kraken/0/private/AddOrder", content=order, headers=headers)
            assert orders.sent.acquire(timeout=10)
            queued = pool.submit(api.post, "/proxy/kraken/0/private/AddOrder", content=order, headers=headers)
            time.sleep(0.3)  # it waits for the old key's turn
            rotated = api.post(f"/admin/credentials/{credential['id']}/rotate", params={"force": "true"},
                               headers=ADMIN, json={"api_key": new_key,
                                                    "api_secret": base64.b64encode(os.urandom(64)).decode()})
            assert rotated.status_code == 200, rotated.text
            orders.release.set()
            assert first.result().status_code == 200 and queued.result().status_code == 200
        assert orders.keys[1] == new_key and orders.keys[0] != new_key


class TestSign:
    def test_returns_what_to_send(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        server_time_now(exchange)
        # A Binance signature does not cover its endpoint: /sign needs the check to say the key cannot withdraw.
        exchange.get(f"{BINANCE}/sapi/v1/account/apiRestrictions").respond(json={
            "enableReading": True, "enableSpotAndMarginTrading": True, "enableWithdrawals": False})
        assert api.post("/admin/credentials/spot/check", headers=ADMIN).json()["status"] == "connected"
        response = api.post(
            "/sign",
            headers=bot["headers"],
            json={"credential": "spot", "method": "GET", "path": "/api/v3/account", "query": "omitZeroBalances=true"},
        )
        assert response.status_code == 200, response.text
        signed = response.json()
        url = httpx.URL(signed["url"])
        assert url.host == "api.binance.com" and url.path == "/api/v3/account"
        assert signed["headers"]["x-mbx-apikey"] == API_KEY
        assert binance_signature_ok(httpx.Request(signed["method"], url, content=signed["body"].encode()))
        assert SECRET not in response.text

    def test_refuses_what_proxy_refuses(self, api: TestClient, bot: dict[str, Any]) -> None:
        reader = create_client(api, credentials=[bot["credential"]["id"]], permissions=["read"])
        body = {"credential": "spot", "method": "POST", "path": "/api/v3/order", "query": "symbol=X"}
        assert_problem(api.post("/sign", headers={"X-Signvault-Token": reader["token"]}, json=body), 403)
        body = {"credential": "not-mine", "method": "GET", "path": "/api/v3/account"}
        assert_problem(api.post("/sign", headers=bot["headers"], json=body), 403, "credential-not-granted")
        body = {"credential": "spot", "method": "GET", "path": "//evil.example/x"}
        assert_problem(api.post("/sign", headers=bot["headers"], json=body), 400, "unsafe-path")


class TestWsLogin:
    def test_login_needs_trade_because_a_socket_can_trade(self, api: TestClient, exchange: Any) -> None:
        exchange.get("https://www.okx.com/api/v5/public/time").respond(
            json={"code": "0", "data": [{"ts": str(int(time.time() * 1000))}]}
        )
        credential = create_credential(api, exchange="okx", label="okx-main", passphrase="pw", api_key="OKXKEY000001")
        trader = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        reader = create_client(api, credentials=[credential["id"]], permissions=["read"])
        response = api.post(
            "/sign/ws-login", json={"credential": "okx-main"}, headers={"X-Signvault-Token": trader["token"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["message"]["args"][0]["apiKey"] == "OKXKEY000001"
        assert_problem(
            api.post("/sign/ws-login", json={"credential": "okx-main"}, headers={"X-Signvault-Token": reader["token"]}),
            403,
            "permission-denied",
        )

    def test_a_login_sends_nothing_while_the_egress_ip_is_banned(self, api: TestClient, exchange: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
        # The login syncs the clock when stale; that probe is an exchange call like any other.
        clock = exchange.get("https://www.okx.com/api/v5/public/time").respond(
            json={"code": "0", "data": [{"ts": str(int(time.time() * 1000))}]})
        exchange.get("https://www.okx.com/api/v5/account/balance").respond(418, headers={"Retry-After": "600"})
        credential = create_credential(api, exchange="okx", label="okx-main", passphrase="pw", api_key="OKXKEY000001")
        trader = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        headers = {"X-Signvault-Token": trader["token"]}
        assert api.get("/proxy/okx/api/v5/account/balance", headers=headers).status_code == 418  # banned now
        synced = clock.call_count
        monkeypatch.setattr("app.proxy.clock.REFRESH_AFTER_S", 0.0)  # every login finds the clock stale
        for _ in range(3):
            api.post("/sign/ws-login", json={"credential": "okx-main"}, headers=headers)
        assert clock.call_count == synced

    def test_exchange_without_signed_login_is_400(self, api: TestClient, bot: dict[str, Any]) -> None:
        response = api.post("/sign/ws-login", json={"credential": "spot"}, headers=bot["headers"])
        assert_problem(response, 400, "bad-exchange-request")  # an HMAC Binance key cannot log in


class TestHopByHop:
    def test_headers_named_in_connection_are_not_forwarded_either_way(
        self, api: TestClient, exchange: Any, bot: dict[str, Any],
    ) -> None:
        server_time_now(exchange)
        account = exchange.get(f"{BINANCE}/api/v3/account").respond(
            json={}, headers={"Connection": "X-Internal", "X-Internal": "upstream-secret", "X-Kept": "1"})
        response = api.get("/proxy/binance/api/v3/account",
                           headers={**bot["headers"], "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1"})
        assert "x-secret-hop" not in account.calls.last.request.headers
        assert "x-internal" not in response.headers and response.headers["x-kept"] == "1"

    def test_the_exchanges_browser_policies_do_not_bind_signvaults_host(
        self, api: TestClient, exchange: Any, bot: dict[str, Any],
    ) -> None:
        server_time_now(exchange)
        exchange.get(f"{BINANCE}/api/v3/account").respond(json={}, headers={
            "Strict-Transport-Security": "max-age=31536000; includeSubdomains", "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS", "X-Content-Type-Options": "nosniff",
            "X-MBX-USED-WEIGHT-1M": "20"})
        response = api.get("/proxy/binance/api/v3/account", headers=bot["headers"])
        assert response.status_code == 200
        assert not {"strict-transport-security", "access-control-allow-origin", "access-control-allow-methods"} & set(
            response.headers)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-mbx-used-weight-1m"] == "20"


class TestCancelPriority:
    def test_cancels_keep_the_last_tenth_of_the_exchange_budget(
        self, api: TestClient, exchange: Any, bot: dict[str, Any],
    ) -> None:
        server_time_now(exchange)
        # Binance says 5400 of its 6000 weight is used: the 90% line for everything but cancels.
        exchange.get(f"{BINANCE}/api/v3/account").respond(json={}, headers={"X-MBX-USED-WEIGHT-1M": "5400"})
        cancel = exchange.delete(f"{BINANCE}/api/v3/order").respond(json={"status": "CANCELED"})
        order = exchange.post(f"{BINANCE}/api/v3/order").respond(json={"status": "NEW"})
        assert api.get("/proxy/binance/api/v3/account", headers=bot["headers"]).status_code == 200
        refused = api.post("/proxy/binance/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
                           headers=bot["headers"])
        assert_problem(refused, 429, "rate-limited")
        assert api.delete("/proxy/binance/api/v3/order?symbol=BTCUSDT&orderId=1",
                          headers=bot["headers"]).status_code == 200
        assert cancel.call_count == 1 and order.call_count == 0


def connected_spot_key(api: TestClient, exchange: Any) -> None:
    """The bot's Binance key, checked and found unable to withdraw: Binance's signatures do not cover
    the endpoint, so /sign signs only for a key whose every right the bot has."""
    server_time_now(exchange)
    exchange.get(f"{BINANCE}/sapi/v1/account/apiRestrictions").respond(json={
        "enableReading": True, "enableSpotAndMarginTrading": True, "enableWithdrawals": False})
    assert api.post("/admin/credentials/spot/check", headers=ADMIN).json()["status"] == "connected"


class TestExchangeCounters:
    def test_binance_order_counts_are_followed(self, api: TestClient, exchange: Any, bot: dict[str, Any]) -> None:
        server_time_now(exchange)
        order = exchange.post(f"{BINANCE}/api/v3/order").respond(
            json={"status": "NEW"}, headers={"X-MBX-ORDER-COUNT-10S": "100", "X-MBX-ORDER-COUNT-1D": "100"})
        target = "/proxy/binance/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1"
        early_in_an_order_interval()
        assert api.post(target, headers=bot["headers"]).status_code == 200
        assert_problem(api.post(target, headers=bot["headers"]), 429, "rate-limited")  # 100 per 10 s: spent
        assert order.call_count == 1

    def test_a_lower_binance_order_count_frees_the_budget(self, api: TestClient, exchange: Any,
                                                          bot: dict[str, Any]) -> None:
        """Binance counts unfilled orders: its answer's count sets signvault's, lower too. Orders
        signed through /sign count until then, and are not taken for orders still in flight."""
        connected_spot_key(api, exchange)
        body = {"credential": "spot", "method": "POST", "path": "/api/v3/order", "query": "symbol=BTCUSDT&side=BUY"}
        early_in_an_order_interval()
        assert [api.post("/sign", headers=bot["headers"], json=body).status_code for _ in range(89)] == [200] * 89
        order = exchange.post(f"{BINANCE}/api/v3/order").respond(
            json={"status": "FILLED"}, headers={"X-MBX-ORDER-COUNT-10S": "1", "X-MBX-ORDER-COUNT-1D": "1"})
        target = "/proxy/binance/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1"
        statuses = [api.post(target, headers=bot["headers"]).status_code for _ in range(120)]
        assert statuses == [200] * 120 and order.call_count == 120

    def test_an_otoco_signed_through_sign_spends_three_orders(self, api: TestClient, exchange: Any,
                                                              bot: dict[str, Any]) -> None:
        """An OTOCO list is three orders in Binance's count: signvault, which never sees a signed
        request's answer, stops at the 30 lists that fill 90 of spot's 100 per 10 s."""
        connected_spot_key(api, exchange)
        body = {"credential": "spot", "method": "POST", "path": "/api/v3/orderList/otoco", "query": "symbol=BTCUSDT"}
        early_in_an_order_interval()
        statuses = [api.post("/sign", headers=bot["headers"], json=body).status_code for _ in range(31)]
        assert statuses == [200] * 30 + [429]

    def test_a_spent_endpoint_counter_cools_that_endpoint_down(self, api: TestClient, exchange: Any) -> None:
        credential = create_credential(api, exchange="bybit", label="bybit")
        client = create_client(api, credentials=[credential["id"]])
        exchange.get("https://api.bybit.com/v5/market/time").respond(
            json={"retCode": 0, "result": {"timeNano": str(__import__("time").time_ns())}})
        reset = str(int(time.time() * 1000) + 3000)
        balance = exchange.get("https://api.bybit.com/v5/account/wallet-balance").respond(
            json={"retCode": 0}, headers={"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": reset})
        headers = {"X-Signvault-Token": client["token"]}
        assert api.get("/proxy/bybit/v5/account/wallet-balance", headers=headers).status_code == 200
        refused = api.get("/proxy/bybit/v5/account/wallet-balance", headers=headers)
        assert_problem(refused, 429, "exchange-cooling-down")
        assert int(refused.headers["retry-after"]) in (2, 3)
        assert balance.call_count == 1

    def test_an_endpoint_is_its_method_and_path(self, api: TestClient, exchange: Any) -> None:
        """Gate places, lists and cancels all orders on one path, and counts each apart."""
        credential = create_credential(api, exchange="gate", label="gate")
        client = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        exchange.get("https://api.gateio.ws/api/v4/spot/time").respond(json={"server_time": int(time.time() * 1000)})
        place = exchange.post("https://api.gateio.ws/api/v4/spot/orders").respond(
            json={"id": "1"}, headers={"X-Gate-RateLimit-Requests-Remain": "0",
                                       "X-Gate-RateLimit-Reset-Timestamp": str(int(time.time()) + 3)})
        cancel_all = exchange.delete("https://api.gateio.ws/api/v4/spot/orders").respond(json=[])
        headers = {"X-Signvault-Token": client["token"], "content-type": "application/json"}
        order = b'{"currency_pair":"BTC_USDT","side":"buy","amount":"1","price":"100"}'
        assert api.post("/proxy/gate/api/v4/spot/orders", content=order, headers=headers).status_code == 200
        assert_problem(api.post("/proxy/gate/api/v4/spot/orders", content=order, headers=headers), 429,
                       "exchange-cooling-down")
        cancelled = api.delete("/proxy/gate/api/v4/spot/orders?currency_pair=BTC_USDT", headers=headers)
        assert cancelled.status_code == 200, cancelled.text
        assert place.call_count == 1 and cancel_all.call_count == 1

    def test_a_spent_public_endpoint_pauses_only_that_endpoint_for_the_ip(self, api: TestClient,
                                                                           exchange: Any) -> None:
        """OKX limits public endpoints per IP and endpoint: a bot that spends the tickers' budget must
        not stop the IP's private calls (cancels included) or its other public ones."""
        credential = create_credential(api, exchange="okx", label="okx-main", passphrase="pw", api_key="OKXKEY000001")
        client = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        exchange.get("https://www.okx.com/api/v5/public/time").respond(
            json={"code": "0", "data": [{"ts": str(int(time.time() * 1000))}]})
        tickers = exchange.get("https://www.okx.com/api/v5/market/tickers").respond(
            429, json={"code": "50011", "msg": "Too Many Requests"})
        books = exchange.get("https://www.okx.com/api/v5/market/books").respond(json={"code": "0", "data": []})
        cancel = exchange.post("https://www.okx.com/api/v5/trade/cancel-order").respond(json={"code": "0", "data": []})
        headers = {"X-Signvault-Token": client["token"], "content-type": "application/json"}
        assert api.get("/proxy/okx/api/v5/market/tickers?instType=SPOT", headers=headers).status_code == 429
        assert_problem(api.get("/proxy/okx/api/v5/market/tickers?instType=SWAP", headers=headers), 429,
                       "exchange-cooling-down")
        assert api.get("/proxy/okx/api/v5/market/books?instId=BTC-USDT", headers=headers).status_code == 200
        cancelled = api.post("/proxy/okx/api/v5/trade/cancel-order", headers=headers,
                             content=b'{"instId":"BTC-USDT","ordId":"1"}')
        assert cancelled.status_code == 200, cancelled.text
        assert (tickers.call_count, books.call_count, cancel.call_count) == (1, 1, 1)
        assert 'signvault_cooldowns_total{exchange="okx",kind="throttle",scope="endpoint"}' in api.get("/metrics").text

    def test_a_spent_endpoint_pauses_only_that_endpoint_so_cancels_go_on(self, api: TestClient, exchange: Any) -> None:
        """Bybit counts each endpoint apart: orders spent must not keep the bot from cancelling."""
        credential = create_credential(api, exchange="bybit", label="bybit")
        client = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
        exchange.get("https://api.bybit.com/v5/market/time").respond(
            json={"retCode": 0, "result": {"timeNano": str(time.time_ns())}})
        reset = str(int(time.time() * 1000) + 3000)
        create = exchange.post("https://api.bybit.com/v5/order/create").respond(
            json={"retCode": 0}, headers={"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": reset})
        cancel = exchange.post("https://api.bybit.com/v5/order/cancel").respond(json={"retCode": 0})
        headers = {"X-Signvault-Token": client["token"], "content-type": "application/json"}
        order = b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}'
        assert api.post("/proxy/bybit/v5/order/create", content=order, headers=headers).status_code == 200
        assert_problem(api.post("/proxy/bybit/v5/order/create", content=order, headers=headers), 429,
                       "exchange-cooling-down")
        cancelled = api.post("/proxy/bybit/v5/order/cancel", headers=headers,
                             content=b'{"category":"linear","symbol":"BTCUSDT","orderId":"1"}')
        assert cancelled.status_code == 200, cancelled.text
        assert create.call_count == 1 and cancel.call_count == 1
