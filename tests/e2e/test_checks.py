"""Connection checks in the exchange's own terms, and key replacement without downtime."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import ADMIN, assert_problem, make_settings
from tests.e2e.conftest import CASES, call, enrol
from tests.simulator import EXCHANGE_IDS, SimulatorServer

OKX = CASES["okx"]


def check(gateway: TestClient, label: str) -> dict:
    response = gateway.post(f"/admin/credentials/{label}/check", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("exchange", sorted(CASES))
def test_every_exchange_reports_connected(gateway: TestClient, sim: SimulatorServer, exchange: str) -> None:
    case = CASES[exchange]
    enrol(gateway, sim, case)
    result = check(gateway, f"{exchange}-e2e")
    assert result["status"] == "connected", result
    if exchange in ("binance", "binanceusdm", "okx", "bybit", "kucoin", "bitget", "coinbase"):
        assert result["permissions"]["trade"] is True and result["permissions"]["withdraw"] is False


class TestStatuses:
    """Each status from the simulator's answer, in OKX's codes (distinct for each cause)."""

    def test_invalid_key(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        sim.config.remove_account("okx", OKX.api_key)
        assert check(gateway, "okx-e2e")["status"] == "invalid_key"

    def test_invalid_signature(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        sim.config.add_account("okx", OKX.api_key, "another-secret", passphrase=OKX.passphrase)
        assert check(gateway, "okx-e2e")["status"] == "invalid_signature"

    def test_ip_not_whitelisted(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX, ip_whitelist={"192.0.2.1"})
        result = check(gateway, "okx-e2e")
        assert result["status"] == "ip_not_whitelisted" and "50110" in result["detail"]

    def test_clock_skew_that_a_resync_cannot_fix(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        sim.config.force("okx", 401, {"code": "50102", "msg": "Timestamp request expired", "data": []},
                         path="/api/v5/account/config", times=None)
        assert check(gateway, "okx-e2e")["status"] == "clock_skew"

    def test_permission_denied(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        sim.config.force("okx", 401, {"code": "50120", "msg": "API key doesn't have permission", "data": []},
                         path="/api/v5/account/config")
        assert check(gateway, "okx-e2e")["status"] == "permission_denied"

    def test_exchange_unavailable(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        sim.config.force("okx", 503, "maintenance", path="/api/v5/account/config", times=None)
        result = check(gateway, "okx-e2e")
        assert result["status"] == "exchange_unavailable" and "503" in result["detail"]

    def test_ambiguous_codes_say_so(self, gateway: TestClient, sim: SimulatorServer) -> None:
        binance = CASES["binance"]
        enrol(gateway, sim, binance, ip_whitelist={"192.0.2.1"})
        result = check(gateway, "binance-e2e")
        assert result["status"] == "invalid_key" and "IP not whitelisted" in result["detail"]


class TestWithdrawKeys:
    def test_a_key_that_can_withdraw_is_flagged(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        sim.config.get_account("okx", OKX.api_key).can_withdraw = True
        result = check(gateway, "okx-e2e")
        assert result["permissions"]["withdraw"] is True
        assert any("withdrawals are enabled" in w for w in result["warnings"])
        assert any("no IP restriction" in w for w in result["warnings"])

    def test_refused_at_creation_when_configured(self, sim: SimulatorServer, tmp_path: Path) -> None:
        urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
        settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls,
                                 refuse_withdraw_keys=True)
        with TestClient(create_app(settings)) as gateway:
            sim.config.add_account("okx", OKX.api_key, OKX.secret, passphrase=OKX.passphrase, can_withdraw=True)
            body = {"exchange": "okx", "label": "risky", "api_key": OKX.api_key, "api_secret": OKX.secret,
                    "passphrase": OKX.passphrase}
            assert_problem(gateway.post("/admin/credentials", json=body, headers=ADMIN), 422, "withdraw-key-refused")
            assert gateway.get("/admin/credentials", headers=ADMIN).json()["items"] == []
            sim.config.get_account("okx", OKX.api_key).can_withdraw = False
            created = gateway.post("/admin/credentials", json=body, headers=ADMIN).json()
            assert created["check"]["status"] == "connected"


    @pytest.mark.parametrize("force", ["false", "true"])
    def test_refused_at_rotation_when_configured(self, sim: SimulatorServer, tmp_path: Path, force: str) -> None:
        urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
        settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls,
                                 refuse_withdraw_keys=True)
        with TestClient(create_app(settings)) as gateway:
            headers = enrol(gateway, sim, OKX)
            sim.config.add_account("okx", NEW_KEY, NEW_SECRET, passphrase=OKX.passphrase, can_withdraw=True)
            rotated = gateway.post("/admin/credentials/okx-e2e/rotate", headers=ADMIN, params={"force": force},
                                   json={"api_key": NEW_KEY, "api_secret": NEW_SECRET, "passphrase": OKX.passphrase})
            assert_problem(rotated, 422, "withdraw-key-refused")
            assert gateway.get("/admin/credentials/okx-e2e", headers=ADMIN).json()["active_version"] == 1
            assert call(gateway, OKX, headers, OKX.read).status_code == 200
        assert sim.config.received[-1].api_key == OKX.api_key

    def test_refused_at_rollback_when_configured(self, sim: SimulatorServer, tmp_path: Path) -> None:
        """Withdrawals enabled on the old key since it was stored: rolling back to it is refused too."""
        urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
        settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls,
                                 refuse_withdraw_keys=True)
        with TestClient(create_app(settings)) as gateway:
            headers = enrol(gateway, sim, OKX)
            sim.config.add_account("okx", NEW_KEY, NEW_SECRET, passphrase=OKX.passphrase)
            assert gateway.post("/admin/credentials/okx-e2e/rotate", headers=ADMIN, json={
                "api_key": NEW_KEY, "api_secret": NEW_SECRET, "passphrase": OKX.passphrase}).status_code == 200
            sim.config.get_account("okx", OKX.api_key).can_withdraw = True
            refused = assert_problem(gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN), 422,
                                     "withdraw-key-refused")
            assert [e["field"] for e in refused["errors"]] == ["version"]
            assert gateway.get("/admin/credentials/okx-e2e", headers=ADMIN).json()["active_version"] == 2
            assert call(gateway, OKX, headers, OKX.read).status_code == 200
            assert sim.config.received[-1].api_key == NEW_KEY
            sim.config.get_account("okx", OKX.api_key).can_withdraw = False
            rolled = gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN, json={"version": 1})
            assert rolled.status_code == 200 and rolled.json()["active_version"] == 1, rolled.text
            assert rolled.json()["check"]["status"] == "connected"
            assert call(gateway, OKX, headers, OKX.read).status_code == 200
        assert sim.config.received[-1].api_key == OKX.api_key

    def test_a_rollback_changes_only_the_credential_it_checked(self, sim: SimulatorServer, tmp_path: Path) -> None:
        """While the old key is checked, the label moves to another credential whose old key can
        withdraw: that one must not be rolled back unchecked, nor a newer rotation undone."""
        urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
        settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}", exchange_urls=urls,
                                 refuse_withdraw_keys=True)
        keys = {name: (f"OKX{name.upper():0<15}", f"okx-{name}-secret") for name in ("x2", "y1", "y2", "x3")}
        with TestClient(create_app(settings)) as gateway:
            enrol(gateway, sim, OKX)  # x, version 1, labelled okx-e2e
            for key, secret in keys.values():
                sim.config.add_account("okx", key, secret, passphrase=OKX.passphrase)

            def store(label: str, name: str, *, rotate: bool) -> None:
                key, secret = keys[name]
                body = {"api_key": key, "api_secret": secret, "passphrase": OKX.passphrase}
                answer = (gateway.post(f"/admin/credentials/{label}/rotate", headers=ADMIN, json=body) if rotate else
                          gateway.post("/admin/credentials", headers=ADMIN,
                                       json={**body, "exchange": "okx", "label": label}))
                assert answer.status_code in (200, 201), answer.text

            store("okx-e2e", "x2", rotate=True)
            store("other", "y1", rotate=False)
            store("other", "y2", rotate=True)
            sim.config.get_account("okx", keys["y1"][0]).can_withdraw = True  # y's old key, since
            sim.config.force("okx", delay_seconds=0.8, path="/api/v5/account/config")  # x's old key's check
            answers = []
            rollback = threading.Thread(target=lambda: answers.append(
                gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN)))
            rollback.start()
            time.sleep(0.3)
            for label, to in (("okx-e2e", "x-old"), ("other", "okx-e2e")):
                relabelled = gateway.patch(f"/admin/credentials/{label}", headers=ADMIN, json={"label": to})
                assert relabelled.status_code == 200
            rollback.join()
            assert answers[0].status_code == 200, answers[0].text
            assert answers[0].json()["label"] == "x-old" and answers[0].json()["active_version"] == 1
            assert gateway.get("/admin/credentials/okx-e2e", headers=ADMIN).json()["active_version"] == 2

            sim.config.force("okx", delay_seconds=0.8, path="/api/v5/account/config")
            rollback = threading.Thread(target=lambda: answers.append(
                gateway.post("/admin/credentials/x-old/rollback", headers=ADMIN, json={"version": 2})))
            rollback.start()
            time.sleep(0.3)
            store("x-old", "x3", rotate=True)  # a newer key lands while version 2's is checked
            rollback.join()
            assert_problem(answers[1], 409)
            assert gateway.get("/admin/credentials/x-old", headers=ADMIN).json()["active_version"] == 3


NEW_KEY = "OKXNEWKEY000000002"
NEW_SECRET = "okx-new-secret"


class TestRotation:
    def rotate(self, gateway: TestClient, **params: str):  # type: ignore[no-untyped-def]
        return gateway.post("/admin/credentials/okx-e2e/rotate", headers=ADMIN, params=params,
                            json={"api_key": NEW_KEY, "api_secret": NEW_SECRET, "passphrase": OKX.passphrase})

    def test_a_bad_new_key_is_refused_and_the_old_one_keeps_serving(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        headers = enrol(gateway, sim, OKX)  # the new key was never created at the exchange
        refused = assert_problem(self.rotate(gateway), 422, "key-check-failed")
        assert refused["detail"].startswith("invalid_key") and "old key stays active" in refused["detail"]
        assert gateway.get("/admin/credentials/okx-e2e", headers=ADMIN).json()["active_version"] == 1
        assert call(gateway, OKX, headers, OKX.read).status_code == 200
        assert sim.config.received[-1].api_key == OKX.api_key

    def test_force_skips_the_check(self, gateway: TestClient, sim: SimulatorServer) -> None:
        enrol(gateway, sim, OKX)
        assert self.rotate(gateway, force="true").json()["active_version"] == 2

    def test_rotation_under_load_fails_no_request(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX, rate_limit="1000/second")
        sim.config.add_account("okx", NEW_KEY, NEW_SECRET, passphrase=OKX.passphrase)
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                statuses.append(call(gateway, OKX, headers, OKX.read).status_code)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.4)
        rotated = self.rotate(gateway)
        time.sleep(0.4)
        stop.set()
        for worker in workers:
            worker.join()
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["check"]["status"] == "connected"
        assert len(statuses) > 20 and set(statuses) == {200}
        keys = [r.api_key for r in sim.config.received if r.path == "/api/v5/account/balance"]
        assert keys[0] == OKX.api_key and keys[-1] == NEW_KEY
        assert all(r.verdict == "accepted" for r in sim.config.received)  # never a key with the other secret

    def test_rollback_is_one_call(self, gateway: TestClient, sim: SimulatorServer) -> None:
        headers = enrol(gateway, sim, OKX)
        sim.config.add_account("okx", NEW_KEY, NEW_SECRET, passphrase=OKX.passphrase)
        assert self.rotate(gateway).status_code == 200
        rolled = gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN)
        assert rolled.status_code == 200 and rolled.json()["active_version"] == 1
        assert rolled.json()["check"] is None  # the last check was of version 2's key
        assert call(gateway, OKX, headers, OKX.read).status_code == 200
        assert sim.config.received[-1].api_key == OKX.api_key
        assert_problem(gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN), 409)
        forward = gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN, json={"version": 2})
        assert forward.json()["active_version"] == 2

    def test_a_key_rolled_away_from_can_be_replaced_without_signing_again(
        self, gateway: TestClient, sim: SimulatorServer,
    ) -> None:
        # v2 leaked, so ops rolled back to v1; the fix is a third key, which must not need v2 active
        # first (every rotation after a rollback was a 409: it numbered the new version 2 again).
        headers = enrol(gateway, sim, OKX)
        sim.config.add_account("okx", NEW_KEY, NEW_SECRET, passphrase=OKX.passphrase)
        assert self.rotate(gateway).status_code == 200
        assert gateway.post("/admin/credentials/okx-e2e/rollback", headers=ADMIN).json()["active_version"] == 1
        sim.config.add_account("okx", "OKXTHIRDKEY0000003", "okx-third-secret", passphrase=OKX.passphrase)
        third = gateway.post("/admin/credentials/okx-e2e/rotate", headers=ADMIN, json={
            "api_key": "OKXTHIRDKEY0000003", "api_secret": "okx-third-secret", "passphrase": OKX.passphrase})
        assert third.status_code == 200 and third.json()["active_version"] == 3, third.text
        assert call(gateway, OKX, headers, OKX.read).status_code == 200
        assert sim.config.received[-1].api_key == "OKXTHIRDKEY0000003"
        assert NEW_KEY not in {r.api_key for r in sim.config.received[-2:]}
