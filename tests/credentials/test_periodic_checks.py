"""The periodic connection check (SIGNVAULT_CHECK_INTERVAL_S): a round over every enabled key, each
read again just before its check, so a key disabled, deleted or replaced meanwhile is left alone."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from app.background import check_all
from app.settings import Settings
from tests.conftest import ADMIN, create_credential, make_settings

BINANCE = "https://api.binance.com"
RESTRICTIONS = {"ipRestrict": True, "enableReading": True, "enableSpotAndMarginTrading": True,
                "enableWithdrawals": False, "enableInternalTransfer": False, "permitsUniversalTransfer": False}


class Exchange:
    """Binance's key check, answering each API key as told; the first call waits until `go_on()`."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.keys_checked: list[str] = []
        self.invalid: set[str] = set()
        self.first_arrived, self._go_on = threading.Event(), threading.Event()
        mock.get(f"{BINANCE}/api/v3/time").mock(
            side_effect=lambda _: httpx.Response(200, json={"serverTime": int(time.time() * 1000)}))
        mock.get(f"{BINANCE}/sapi/v1/account/apiRestrictions").mock(side_effect=self._answer)

    def go_on(self) -> None:
        self._go_on.set()

    async def _answer(self, request: httpx.Request) -> httpx.Response:
        key = request.headers["x-mbx-apikey"]
        self.keys_checked.append(key)
        self.first_arrived.set()
        while not self._go_on.is_set():
            await asyncio.sleep(0.01)
        if key in self.invalid:
            return httpx.Response(401, json={"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
        return httpx.Response(200, json=RESTRICTIONS)


@pytest.fixture
def settings(tmp_path: Any, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, upstream_client="httpx")  # the client respx intercepts


@pytest.fixture
def exchange() -> Iterator[Exchange]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield Exchange(mock)


def round_while(api: TestClient, exchange: Exchange, change: Callable[[], Any]) -> None:
    """Run one round of checks; make `change` while the first key's check is at the exchange."""
    assert api.portal is not None
    portal = api.portal
    with ThreadPoolExecutor(1) as pool:
        checking = pool.submit(lambda: portal.call(check_all, api.app))
        assert exchange.first_arrived.wait(10)
        change()
        exchange.go_on()
        checking.result(timeout=30)


def check_of(api: TestClient, ref: str) -> Any:
    return api.get(f"/admin/credentials/{ref}", headers=ADMIN).json()["check"]


def test_a_round_stores_each_keys_check(api: TestClient, exchange: Exchange) -> None:
    create_credential(api, label="good", api_key="KEYGOOD0001")
    create_credential(api, label="bad", api_key="KEYBAD0001")
    exchange.invalid.add("KEYBAD0001")
    round_while(api, exchange, lambda: None)
    assert check_of(api, "good")["status"] == "connected"
    assert check_of(api, "bad")["status"] != "connected"


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_a_key_disabled_or_deleted_during_the_round_is_not_sent(
        api: TestClient, exchange: Exchange, change: str) -> None:
    create_credential(api, label="first", api_key="KEYFIRST0001")
    create_credential(api, label="second", api_key="KEYSECOND0001")
    changes = {
        "disable": lambda: api.patch("/admin/credentials/second", json={"enabled": False}, headers=ADMIN),
        "delete": lambda: api.delete("/admin/credentials/second", headers=ADMIN),
    }
    round_while(api, exchange, lambda: changes[change]())
    assert exchange.keys_checked == ["KEYFIRST0001"]


def test_a_check_of_a_key_replaced_meanwhile_is_not_stored_as_the_new_keys(
        api: TestClient, exchange: Exchange) -> None:
    create_credential(api, label="rotating", api_key="KEYOLD0001")
    exchange.invalid.add("KEYOLD0001")  # the old key was revoked at the exchange: why it is replaced

    def rotate() -> None:
        rotated = api.post("/admin/credentials/rotating/rotate", params={"force": "true"}, headers=ADMIN,
                           json={"api_key": "KEYNEW0001", "api_secret": "new-secret-0001"})
        assert rotated.status_code == 200, rotated.text

    round_while(api, exchange, rotate)
    assert exchange.keys_checked == ["KEYOLD0001"]
    assert check_of(api, "rotating") is None  # the old key's failure is not the new key's
