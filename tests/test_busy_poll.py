"""SIGNVAULT_BUSY_POLL: the event loop polls its sockets without sleeping, and the worker still
serves and audits as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi.testclient import TestClient

from app import busy_poll
from app.settings import Settings
from tests.conftest import ADMIN


def test_busy_polling_keeps_the_loop_from_sleeping() -> None:
    async def scenario() -> tuple[list[float | None], list[float | None]]:
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        waits: list[float | None] = []
        select = selector.select

        def recorded(timeout: float | None = None) -> object:
            waits.append(timeout)
            return select(timeout)

        selector.select = recorded
        await asyncio.sleep(0.05)  # nothing to do: the loop sleeps until its timer is due
        idle = waits.copy()
        waits.clear()
        spinner = asyncio.create_task(busy_poll.spin())
        await asyncio.sleep(0.05)
        spinning = waits.copy()
        spinner.cancel()
        return idle, spinning

    idle, spinning = asyncio.run(scenario())
    assert any(timeout is None or timeout > 0 for timeout in idle)
    assert len(spinning) > 10 and all(timeout == 0 for timeout in spinning)


def test_a_busy_polling_worker_serves_and_writes_its_audit_rows(
        settings: Settings, make_client: Callable[[Settings], TestClient]) -> None:
    api = make_client(settings.model_copy(update={"busy_poll": True}))
    assert api.get("/healthz").status_code == 200
    created = api.post("/admin/clients", headers=ADMIN, json={"name": "spinning", "permissions": ["read"]})
    assert created.status_code == 201
    listed = api.get("/admin/audit", headers=ADMIN, params={"limit": 5}).json()["items"]
    assert any(item["action"] == "create_client" for item in listed)
    batches = api.app.state.audit_writer._sqlite  # type: ignore[attr-defined]
    if batches is not None:  # SQLite: with no idle time to wait for, rows go to the niced thread
        assert len(batches.idle._threads) == 0
