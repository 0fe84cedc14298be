"""`/proxy` is served ahead of FastAPI's routing: it must still answer as the documented route would."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from tests.conftest import ADMIN, assert_problem, create_client, create_credential

BINANCE = "https://api.binance.com"


@pytest.fixture
def exchange() -> Any:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.get(f"{BINANCE}/api/v3/time").mock(
            side_effect=lambda _: httpx.Response(200, json={"serverTime": int(__import__("time").time() * 1000)}))
        yield mock


@pytest.fixture
def token(api: TestClient) -> str:
    credential = create_credential(api, label="spot", api_key="GATEWAYKEY0001", api_secret="gateway-secret-0001")
    return str(create_client(api, credentials=[credential["id"]], permissions=["read"])["token"])


def test_no_token_is_401_naming_the_header(api: TestClient, exchange: Any) -> None:
    response = api.get("/proxy/binance/api/v3/account")
    assert_problem(response, 401, "not-authenticated")
    assert response.headers["www-authenticate"] == "X-Signvault-Token"
    assert response.headers["x-request-id"]


def test_an_overlong_credential_header_is_422_naming_it(api: TestClient, exchange: Any, token: str) -> None:
    response = api.get("/proxy/binance/api/v3/account",
                       headers={"X-Signvault-Token": token, "X-Signvault-Credential": "c" * 101})
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["field"] == "X-Signvault-Credential"


def test_other_methods_get_fastapis_405(api: TestClient, token: str) -> None:
    response = api.request("OPTIONS", "/proxy/binance/api/v3/account", headers={"X-Signvault-Token": token})
    assert_problem(response, 405)


def test_a_failure_inside_is_a_logged_500_problem_with_the_request_id(
        api: TestClient, exchange: Any, token: str, caplog: pytest.LogCaptureFixture) -> None:
    exchange.get(f"{BINANCE}/api/v3/account").mock(side_effect=RuntimeError("the transport broke oddly"))
    with caplog.at_level(logging.ERROR, logger="signvault.errors"):
        response = api.get("/proxy/binance/api/v3/account", headers={"X-Signvault-Token": token})
    assert_problem(response, 500, "internal-error")
    assert response.headers["x-request-id"]
    assert "unhandled RuntimeError" in caplog.text


def test_metrics_and_audit_name_the_route_and_action(api: TestClient, exchange: Any, token: str) -> None:
    exchange.get(f"{BINANCE}/api/v3/account").respond(json={"balances": []})
    assert api.get("/proxy/binance/api/v3/account", headers={"X-Signvault-Token": token}).status_code == 200
    refused = api.post("/proxy/binance/api/v3/order", headers={"X-Signvault-Token": token})  # read-only client
    assert_problem(refused, 403)
    metrics = api.get("/metrics").text
    assert 'route="/proxy/{exchange}/{path:path}",status_class="2xx"' in metrics
    assert 'route="/proxy/{exchange}/{path:path}",status_class="4xx"' in metrics
    rows = api.get("/admin/audit", params={"action": "proxy"}, headers=ADMIN).json()["items"]
    assert sorted(row["status"] for row in rows) == [200, 403]
    assert {row["exchange"] for row in rows} == {"binance"}


SIGN = {"credential": "spot", "method": "GET", "path": "/api/v3/account"}


def binance_key_can(exchange: Any, *, trade: bool, withdraw: bool) -> None:
    """What Binance answers the connection check about the key (GET /sapi/v1/account/apiRestrictions)."""
    exchange.get(f"{BINANCE}/sapi/v1/account/apiRestrictions").respond(json={
        "ipRestrict": True, "enableReading": True, "enableSpotAndMarginTrading": trade,
        "enableWithdrawals": withdraw, "enableInternalTransfer": False, "permitsUniversalTransfer": False})


def test_sign_answers_what_to_send(api: TestClient, exchange: Any) -> None:
    credential = create_credential(api, label="spot", api_key="GATEWAYKEY0001", api_secret="gateway-secret-0001")
    # A Binance signature does not cover its endpoint: /sign needs every right the key has, and the
    # connection check has said the key cannot withdraw.
    binance_key_can(exchange, trade=True, withdraw=False)
    assert api.post("/admin/credentials/spot/check", headers=ADMIN).json()["status"] == "connected"
    trader = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
    response = api.post("/sign", headers={"X-Signvault-Token": trader["token"]}, json=SIGN)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    signed = response.json()
    assert signed["url"].startswith(f"{BINANCE}/api/v3/account?timestamp=") and "&signature=" in signed["url"]
    assert signed["headers"]["x-mbx-apikey"] == "GATEWAYKEY0001" and signed["method"] == "GET"


# A Binance signature covers the parameters, not the method or path: one asked for a read is as good
# on POST /sapi/v1/capital/withdraw/apply with the same parameters. So what the key can do at Binance
# counts, not only what the credential is labelled to do; unknown (never checked) counts as all of it.
@pytest.mark.parametrize(("labelled", "checked", "client_may", "answer"), [
    (["read", "trade"], None, ["read", "trade"], 403),  # never checked: it might withdraw
    (["read", "trade"], {"trade": True, "withdraw": True}, ["read", "trade"], 403),
    (["read", "trade"], {"trade": True, "withdraw": True}, ["read", "trade", "withdraw"], 403),  # label says no
    (["read"], {"trade": True, "withdraw": False}, ["read"], 403),  # a read-only bot would get orders signed
    (["read"], {"trade": False, "withdraw": False}, ["read"], 200),
    (["read", "trade"], {"trade": True, "withdraw": False}, ["read", "trade"], 200),
    (["read", "trade", "withdraw"], {"trade": True, "withdraw": True}, ["read", "trade", "withdraw"], 200),
])
def test_sign_on_binance_needs_all_the_key_can_do_at_the_exchange(
        api: TestClient, exchange: Any, labelled: list[str], checked: dict[str, bool] | None,
        client_may: list[str], answer: int) -> None:
    credential = create_credential(api, label="spot", permissions=labelled)
    if checked is not None:
        binance_key_can(exchange, **checked)
        assert api.post("/admin/credentials/spot/check", headers=ADMIN).json()["status"] == "connected"
    bot = create_client(api, credentials=[credential["id"]], permissions=client_may)
    response = api.post("/sign", headers={"X-Signvault-Token": bot["token"]}, json=SIGN)
    assert response.status_code == answer, response.text
    if answer == 403:
        assert "do not cover the endpoint" in response.json()["detail"]


def test_a_rotated_key_is_unchecked_again_for_sign(api: TestClient, exchange: Any) -> None:
    credential = create_credential(api, label="spot", permissions=["read", "trade"])
    binance_key_can(exchange, trade=True, withdraw=False)
    assert api.post("/admin/credentials/spot/check", headers=ADMIN).json()["status"] == "connected"
    bot = create_client(api, credentials=[credential["id"]], permissions=["read", "trade"])
    assert api.post("/sign", headers={"X-Signvault-Token": bot["token"]}, json=SIGN).status_code == 200
    # Rotated without a check (force): what Binance said of the old key says nothing of the new one.
    rotated = api.post("/admin/credentials/spot/rotate", params={"force": "true"}, headers=ADMIN,
                       json={"api_key": "NEWKEY00000001", "api_secret": "new-secret-000000001"})
    assert rotated.status_code == 200, rotated.text
    assert_problem(api.post("/sign", headers={"X-Signvault-Token": bot["token"]}, json=SIGN), 403)


@pytest.mark.parametrize(("content", "content_type", "field"), [
    (b"", "application/json", "body"),
    (b'{"credential": "spot", "method": "GET"', "application/json", "body"),  # not JSON
    (b"credential=spot&method=GET&path=/x", "application/x-www-form-urlencoded", "body"),
    (b'{"credential": "spot", "method": "GET", "path": "/x", "secret": "hunter2"}', "application/json", "body"),
    (b'{"credential": "spot", "method": "GET", "path": "/x", "hunter2": 1}', "application/json", "body"),
    (b'{"credential": "spot", "method": "TRACE", "path": "/x"}', None, "method"),
])
def test_sign_refuses_bodies_as_fastapi_would_naming_fields_never_echoing(
        api: TestClient, token: str, content: bytes, content_type: str | None, field: str) -> None:
    headers = {"X-Signvault-Token": token, **({"Content-Type": content_type} if content_type else {})}
    response = api.post("/sign", headers=headers, content=content)
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["field"] == field
    assert "hunter2" not in response.text


def test_sign_is_authenticated_before_its_body_is_read(api: TestClient) -> None:
    response = api.post("/sign", content=b"not json", headers={"Content-Type": "application/json"})
    assert_problem(response, 401, "not-authenticated")


def test_sign_with_another_method_gets_fastapis_405(api: TestClient, token: str) -> None:
    assert_problem(api.get("/sign", headers={"X-Signvault-Token": token}), 405)


def test_a_refused_sign_names_its_credential_in_the_audit(api: TestClient, exchange: Any, token: str) -> None:
    refused = api.post("/sign", headers={"X-Signvault-Token": token}, json={**SIGN, "method": "POST",
                                                                          "path": "/api/v3/order"})
    assert_problem(refused, 403)
    rows = api.get("/admin/audit", params={"action": "sign"}, headers=ADMIN).json()["items"]
    assert [(row["status"], row["credential_label"], row["exchange"]) for row in rows] == [(403, "spot", "binance")]


def test_a_client_chosen_method_never_becomes_a_metric_label(api: TestClient, token: str) -> None:
    api.request("BREW", "/proxy/binance/api/v3/account", headers={"X-Signvault-Token": token})
    metrics = api.get("/metrics").text
    assert 'method="BREW"' not in metrics
    assert 'method="OTHER"' in metrics
