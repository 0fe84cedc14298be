"""The batch writer on the app's own database: big batches land whole, values as SQLAlchemy stores them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.audit.sqlite_batches import SLICE
from tests.conftest import ADMIN, run_db

START = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _row(i: int) -> dict[str, Any]:
    # As app/audit/recorder.py submits them: occurred_at in seconds since the epoch.
    return {"occurred_at": (START + timedelta(milliseconds=i)).timestamp(), "request_id": f"req-{i:06d}",
            "actor_kind": "client", "actor": "writer-test", "action": "proxy", "method": "GET",
            "path": f"/proxy/okx/p/{i}", "status": 200 + i % 3, "latency_ms": i / 7,
            "credential_id": None if i % 2 else f"cred-{i}",
            "credential_label": "lab'el \"quoted\"", "credential_version": i % 5 or None, "exchange": "okx"}


def test_a_batch_of_several_slices_lands_whole_and_reads_back_exactly(api: TestClient) -> None:
    count = 2 * SLICE + 13  # two full slices, then 8 + 4 + 1
    writer = api.app.state.audit_writer  # type: ignore[attr-defined]

    async def write(_: AsyncSession) -> None:
        for i in range(count):
            writer.submit(_row(i))
        await writer.flush()

    run_db(api, write)

    async def read(session: AsyncSession) -> list[AuditEvent]:
        return list(await session.scalars(
            select(AuditEvent).where(AuditEvent.actor == "writer-test").order_by(AuditEvent.id)))

    stored = run_db(api, read)
    assert len(stored) == count
    for i, event in enumerate(stored):
        expected = {**_row(i), "occurred_at": START + timedelta(milliseconds=i)}  # read back as a datetime
        got = {key: getattr(event, key) for key in expected}
        assert got == expected, i
    listed = api.get("/admin/audit", headers=ADMIN, params={"actor": "writer-test", "limit": 1}).json()["items"]
    assert listed[0]["request_id"] == f"req-{count - 1:06d}"


def test_odd_batch_sizes_use_power_of_two_statements() -> None:
    from app.audit.sqlite_batches import power_of_two_sizes

    for count in (1, 2, 3, 13, 255, 511, 512):
        sizes = power_of_two_sizes(count)
        assert sum(sizes) == count and all(size & (size - 1) == 0 for size in sizes)
