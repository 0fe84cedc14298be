"""The fixed egress: exchanges see the bound address or the forward proxy's, and drift is loud."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from tests.conftest import ADMIN, assert_problem, make_settings
from tests.e2e.conftest import CASES, call, enrol
from tests.forward_proxy import ForwardProxy
from tests.simulator import EXCHANGE_IDS, SimulatorServer

OKX = CASES["okx"]


def gateway(sim: SimulatorServer, tmp_path: Path, **settings: object) -> TestClient:
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    return TestClient(create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}",
                                               exchange_urls=urls, **settings)))


class TestSourceAddress:
    def test_the_whitelisted_address_is_accepted_and_another_is_refused(
        self, sim: SimulatorServer, tmp_path: Path, ip_echo: str,
    ) -> None:
        with gateway(sim, tmp_path / "a", egress_source_ip="127.0.0.2", egress_echo_url=ip_echo) as app:
            headers = enrol(app, sim, OKX, ip_whitelist={"127.0.0.2"})
            assert call(app, OKX, headers, OKX.read).status_code == 200
            assert sim.config.received[-1].client_ip == "127.0.0.2"
            check = app.post("/admin/credentials/okx-e2e/check", headers=ADMIN).json()
            assert check["status"] == "connected"
            assert check["permissions"]["ip_restricted"] is True
            egress = app.get("/admin/egress", headers=ADMIN).json()
            assert egress["whitelist"] == ["127.0.0.2"] and egress["mode"] == "source_ip"
            assert egress["check"]["observed_ip"] == "127.0.0.2"

        sim.config.reset()
        with gateway(sim, tmp_path / "b", egress_source_ip="127.0.0.3") as app:
            headers = enrol(app, sim, OKX, ip_whitelist={"127.0.0.2"})
            refused = call(app, OKX, headers, OKX.read)
            assert refused.json()["code"] == "50110"  # the exchange's own IP error, passed through
            assert sim.config.received[-1].verdict == "ip_not_whitelisted"
            check = app.post("/admin/credentials/okx-e2e/check", headers=ADMIN).json()
            assert check["status"] == "ip_not_whitelisted"
            stored = app.get("/admin/credentials/okx-e2e", headers=ADMIN).json()["check"]
            assert stored["status"] == "ip_not_whitelisted" and stored["checked_at"]


class TestForwardProxy:
    def test_exchanges_see_the_proxys_address(self, sim: SimulatorServer, tmp_path: Path, ip_echo: str) -> None:
        with ForwardProxy(source_ip="127.0.0.5") as proxy:
            proxy_url = proxy.url.replace("http://", "http://ops:s3cret-proxy-pw@")
            with gateway(sim, tmp_path, egress_proxy=SecretStr(proxy_url), egress_echo_url=ip_echo,
                         egress_ips=["127.0.0.5"]) as app:
                headers = enrol(app, sim, OKX, ip_whitelist={"127.0.0.5"})
                assert call(app, OKX, headers, OKX.read).status_code == 200
                assert sim.config.received[-1].client_ip == "127.0.0.5"
                assert any("/okx/api/v5/account/balance" in f for f in proxy.forwarded)
                egress = app.get("/admin/egress", headers=ADMIN)
                assert egress.json()["mode"] == "proxy" and egress.json()["check"]["matches"] is True
                assert "s3cret-proxy-pw" not in egress.text and "ops:" not in egress.text
                assert egress.json()["via"] == proxy.url

    def test_environment_proxies_are_ignored(self, sim: SimulatorServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: would fail every call
        monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
        with gateway(sim, tmp_path) as app:
            headers = enrol(app, sim, OKX)
            assert call(app, OKX, headers, OKX.read).status_code == 200


class TestDrift:
    def test_a_drifted_ip_is_loud_in_readyz_logs_and_metrics(
        self, sim: SimulatorServer, tmp_path: Path, ip_echo: str, caplog: pytest.LogCaptureFixture,
    ) -> None:
        with gateway(sim, tmp_path, egress_source_ip="127.0.0.2", egress_echo_url=ip_echo,
                     egress_ips=["127.0.0.9"]) as app:
            egress = app.get("/admin/egress", headers=ADMIN).json()
            assert egress["check"] == {**egress["check"], "observed_ip": "127.0.0.2", "matches": False}
            assert egress["whitelist"] == ["127.0.0.9"]
            ready = assert_problem(app.get("/readyz"), 503, "not-ready")
            assert "127.0.0.2" in ready["detail"] and "127.0.0.9" in ready["detail"]
            assert "signvault_egress_ip_mismatch 1.0" in app.get("/metrics").text
            assert "EGRESS IP DRIFTED" in caplog.text

    def test_settings_refuse_two_egress_paths(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="not both"):
            make_settings(tmp_path, "sqlite+aiosqlite://", egress_proxy=SecretStr("http://p:1"),
                          egress_source_ip="127.0.0.2")
