"""Two real `signvault serve` processes on PostgreSQL and Redis behave as one service."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN, ADMIN_TOKEN, MASTER_KEY_A
from tests.e2e.conftest import CASES
from tests.simulator import EXCHANGE_IDS, SimulatorServer

pytestmark = pytest.mark.slow
OKX = CASES["okx"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def replicas(sim: SimulatorServer, database_url_postgres: str, redis_url: str, redis_prefix: str,
             tmp_path: Path) -> Iterator[list[str]]:
    signvault = Path(sys.executable).parent / "signvault"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNVAULT_")}
    env.update({
        "SIGNVAULT_DATABASE_URL": database_url_postgres, "SIGNVAULT_MASTER_KEY": MASTER_KEY_A,
        "SIGNVAULT_ADMIN_TOKEN": ADMIN_TOKEN, "SIGNVAULT_REDIS_URL": redis_url,
        "SIGNVAULT_REDIS_PREFIX": redis_prefix, "SIGNVAULT_REPLICAS": "2", "SIGNVAULT_EGRESS_ECHO_URL": "",
        "SIGNVAULT_EXCHANGE_URLS": json.dumps({e: sim.url_for(e) for e in EXCHANGE_IDS}),
        "SIGNVAULT_LOG_LEVEL": "WARNING", "SIGNVAULT_DATA_DIR": str(tmp_path),
    })
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(subprocess.Popen([str(signvault), "serve", "--port", str(port)], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "a replica did not become ready"
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)


def test_two_processes_act_as_one(replicas: list[str], sim: SimulatorServer) -> None:
    one, two = (httpx.Client(base_url=url, timeout=15) for url in replicas)
    sim.config.add_account("okx", OKX.api_key, OKX.secret, passphrase=OKX.passphrase)
    created = one.post("/admin/credentials", headers=ADMIN, json={
        "exchange": "okx", "label": "shared", "api_key": OKX.api_key, "api_secret": OKX.secret,
        "passphrase": OKX.passphrase, "rate_limit": "6/minute"})
    assert created.status_code == 201, created.text
    token = one.post("/admin/clients", headers=ADMIN, json={
        "name": "bot", "credentials": [created.json()["id"]], "permissions": ["read", "trade"]}).json()["token"]
    bot = {"X-Signvault-Token": token}

    # Added through one, usable through the other.
    assert two.get("/proxy/okx/api/v5/account/balance", headers=bot).status_code == 200
    assert sim.config.received[-1].api_key == OKX.api_key

    # Rotated through one, in force on the other within a second.
    sim.config.add_account("okx", "OKXROTATEDKEY0001", "rotated-secret", passphrase=OKX.passphrase)
    rotated = one.post("/admin/credentials/shared/rotate", headers=ADMIN, json={
        "api_key": "OKXROTATEDKEY0001", "api_secret": "rotated-secret", "passphrase": OKX.passphrase})
    assert rotated.status_code == 200, rotated.text
    started = time.monotonic()
    assert two.get("/proxy/okx/api/v5/account/balance", headers=bot).status_code == 200
    assert sim.config.received[-1].api_key == "OKXROTATEDKEY0001"
    assert time.monotonic() - started < 1.0

    # Together they enforce one limit: 6 per minute, 2 already spent above, the rotation check a third.
    statuses = [(one if i % 2 else two).get("/proxy/okx/api/v5/account/balance", headers=bot).status_code
                for i in range(8)]
    assert statuses.count(200) == 3 and statuses.count(429) == 5, statuses
    one.close()
    two.close()
