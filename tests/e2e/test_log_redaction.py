"""A canary secret driven through every route never reaches the logs (as written) or the metrics."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from app.observability.logs import JsonFormatter
from tests.conftest import ADMIN
from tests.e2e.conftest import CASES, Case, call, enrol
from tests.simulator import SimulatorServer

CANARY_SECRET = "CanaryLogSecret-5f1e2d3c4b5a69788796"
CANARY_KEY = "CanaryLogKey7a8b9c0d1e2f"
CANARY_PASSPHRASE = "CanaryLogPass-1029384756"


@pytest.fixture
def written_logs() -> Iterator[io.StringIO]:
    """What the service's log handler writes, with every library at DEBUG (httpx included)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore", "signvault", "uvicorn")}
    root.addHandler(handler)
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_canary_is_absent_from_logs_and_metrics(gateway: TestClient, sim: SimulatorServer,
                                                written_logs: io.StringIO) -> None:
    case = Case("okx", CANARY_SECRET, CASES["okx"].read, CASES["okx"].order, CASES["okx"].withdraw,
                passphrase=CANARY_PASSPHRASE, api_key=CANARY_KEY)
    headers = enrol(gateway, sim, case)
    token = headers["X-Signvault-Token"]
    call(gateway, case, headers, case.read)
    call(gateway, case, headers, case.order)
    call(gateway, case, headers, case.withdraw)
    gateway.get("/proxy/okx/api/v5/account/balance?signature=client-placeholder", headers=headers)
    signed = gateway.post("/sign", headers=headers, json={"credential": "okx-e2e", "method": "GET",
                                                          "path": "/api/v5/account/balance"}).json()
    httpx.get(signed["url"], headers=signed["headers"])
    gateway.post("/sign/ws-login", headers=headers, json={"credential": "okx-e2e"})
    gateway.post("/admin/credentials/okx-e2e/check", headers=ADMIN)
    sim.config.add_account("okx", CANARY_KEY + "2", CANARY_SECRET + "2", passphrase=CANARY_PASSPHRASE)
    gateway.post("/admin/credentials/okx-e2e/rotate", headers=ADMIN, json={
        "api_key": CANARY_KEY + "2", "api_secret": CANARY_SECRET + "2", "passphrase": CANARY_PASSPHRASE})
    gateway.post("/admin/credentials", headers=ADMIN, json={"exchange": "okx", "label": "bad", "api_key": "x y",
                                                            "api_secret": CANARY_SECRET})
    gateway.get("/admin/audit", headers=ADMIN)
    metrics = gateway.get("/metrics").text

    logs = written_logs.getvalue()
    assert "signvault.access" in logs and "HTTP Request" in logs  # the capture really saw the traffic
    for secret in (CANARY_SECRET, CANARY_KEY, CANARY_PASSPHRASE, token, signed["headers"]["ok-access-sign"],
                   ADMIN["Authorization"].removeprefix("Bearer ")):
        assert secret not in logs, secret
        assert secret not in metrics, secret
