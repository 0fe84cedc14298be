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
