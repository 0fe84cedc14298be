"""The real signvault on a real socket, in front of the signature-verifying simulator, for contract tests.

Contract tests speak plain HTTP (a generated client, schemathesis), so the app runs under uvicorn
(tests/servers.ThreadedServer) with every exchange URL pointed at the simulator and the egress IP check
pointed at a local echo server: nothing here leaves the loopback interface.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.server.connection import HttpConnection
from tests.conftest import ADMIN, make_settings
from tests.servers import ThreadedServer
from tests.simulator import EXCHANGE_IDS, SimulatorServer

OKX_PASSPHRASE = "contract-Passphrase1"


@pytest.fixture(scope="module")
def contract_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer() as server:
        yield server


@contextmanager
def running_signvault(sim: SimulatorServer, data_dir: Path, ip_echo: str, **overrides: Any) -> Iterator[str]:
    """signvault under uvicorn on a free loopback port; yields its base URL."""
    urls = {exchange: sim.url_for(exchange) for exchange in EXCHANGE_IDS}
    values: dict[str, Any] = {"exchange_urls": urls, "egress_echo_url": ip_echo, "egress_check_interval_s": 0,
                              "log_level": "WARNING"}
    values.update(overrides)
    settings = make_settings(data_dir, f"sqlite+aiosqlite:///{data_dir / 'signvault.db'}", **values)
    with ThreadedServer(create_app(settings), lifespan="on", name="signvault",
                        http=HttpConnection) as server:  # the protocol `signvault serve` runs
        yield server.url


@dataclass
class Enrolled:
    """A key at the (simulated) exchange and in signvault, and a bot client granted it."""

    credential: dict[str, Any]
    client: dict[str, Any]

    @property
    def token(self) -> str:
        token: str = self.client["token"]
        return token

    @property
    def ref(self) -> str:
        return f"{self.credential['exchange']}:{self.credential['label']}"


def enrol(base_url: str, sim: SimulatorServer, *, exchange: str = "okx", secret: str,
          passphrase: str | None = OKX_PASSPHRASE, api_key: str | None = None, label: str | None = None,
          rate_limit: str | None = None) -> Enrolled:
    """An HMAC key at the simulated exchange (which verifies its signatures) stored in signvault, and a
    client granted it with read and trade."""
    api_key = api_key or f"CONTRACT{uuid.uuid4().hex[:16].upper()}"
    label = label or f"{exchange}-{uuid.uuid4().hex[:8]}"
    sim.config.add_account(exchange, api_key, secret, passphrase=passphrase)
    body: dict[str, Any] = {"exchange": exchange, "label": label, "api_key": api_key, "api_secret": secret,
                            "permissions": ["read", "trade"]}
    if passphrase is not None:
        body["passphrase"] = passphrase
    if rate_limit:
        body["rate_limit"] = rate_limit
    with httpx.Client(base_url=base_url, headers=ADMIN, timeout=10) as http:
        created = http.post("/admin/credentials", json=body)
        assert created.status_code == 201, created.text
        client = http.post("/admin/clients", json={
            "name": f"bot-{label}", "credentials": [created.json()["id"]], "permissions": ["read", "trade"]})
        assert client.status_code == 201, client.text
    return Enrolled(created.json(), client.json())
