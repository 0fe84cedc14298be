"""The Idempotency-Key store on each backend: a SQLite file in its own thread, PostgreSQL through the
async session. Claim, replay, reuse, in-flight and release behave the same on both."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient

from app.idempotency.store import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotencyStore, StoredAnswer
from tests.conftest import ADMIN, make_settings

T = TypeVar("T")
ANSWER = StoredAnswer(200, [(b"content-type", b"application/json"), (b"x-note", b"caf\xe9")], b'{"ordId":"1"}')


def _on_app_loop(api: TestClient, work: Callable[[IdempotencyStore], Awaitable[T]]) -> T:
    async def call() -> T:
        return await work(api.app.state.idempotency)  # type: ignore[attr-defined]

    assert api.portal is not None
    return api.portal.call(call)


@pytest.fixture
def client_id(api: TestClient) -> str:
    created = api.post("/admin/clients", headers=ADMIN, json={"name": "keyed-bot", "permissions": ["trade"]})
    return str(created.json()["id"])


def test_a_key_is_claimed_once_then_replayed(api: TestClient, client_id: str) -> None:
    assert _on_app_loop(api, lambda store: store.claim(client_id, "order-1", "print-a")) is None
    with pytest.raises(IdempotencyKeyInFlight):
        _on_app_loop(api, lambda store: store.claim(client_id, "order-1", "print-a"))
    _on_app_loop(api, lambda store: store.complete(client_id, "order-1", ANSWER))
    assert _on_app_loop(api, lambda store: store.claim(client_id, "order-1", "print-a")) == ANSWER
    with pytest.raises(IdempotencyKeyReused):
        _on_app_loop(api, lambda store: store.claim(client_id, "order-1", "print-b"))


def test_an_answer_stored_with_text_headers_replays_as_bytes(api: TestClient, client_id: str) -> None:
    """Answers stored before the proxy kept headers as bytes hold names as the exchange wrote them,
    and values decoded as latin-1 (signvault's client) or UTF-8 (httpx): each replays as it arrived."""
    from sqlalchemy import update

    from app.idempotency.models import IdempotencyRecord

    assert _on_app_loop(api, lambda store: store.claim(client_id, "order-3", "print-a")) is None

    async def store_as_before(store: IdempotencyStore) -> None:
        async with store._async_engine.begin() as connection:
            await connection.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == "order-3").values(
                completed_at=IdempotencyRecord.created_at, status=200, body=b"{}",
                headers=[["Content-Type", "application/json"], ["X-Note", "caf\xe9"], ["X-Name", "\u5e01"]]))

    _on_app_loop(api, store_as_before)
    replayed = _on_app_loop(api, lambda store: store.claim(client_id, "order-3", "print-a"))
    assert replayed == StoredAnswer(200, [(b"content-type", b"application/json"), (b"x-note", b"caf\xe9"),
                                          (b"x-name", "\u5e01".encode())], b"{}")


def test_a_released_key_can_be_claimed_again_and_a_completed_one_is_kept(api: TestClient, client_id: str) -> None:
    assert _on_app_loop(api, lambda store: store.claim(client_id, "order-2", "print-a")) is None
    _on_app_loop(api, lambda store: store.release(client_id, "order-2"))
    assert _on_app_loop(api, lambda store: store.claim(client_id, "order-2", "print-b")) is None
    _on_app_loop(api, lambda store: store.complete(client_id, "order-2", ANSWER))
    _on_app_loop(api, lambda store: store.release(client_id, "order-2"))  # only an unfinished claim is released
    assert _on_app_loop(api, lambda store: store.claim(client_id, "order-2", "print-b")) == ANSWER


def test_a_sqlite_file_runs_the_store_in_a_thread_of_its_own(api: TestClient, client_id: str) -> None:
    store = api.app.state.idempotency  # type: ignore[attr-defined]
    on_sqlite_file = str(api.app.state.settings.resolved_database_url).startswith("sqlite")  # type: ignore[attr-defined]
    assert (store._thread is not None) == on_sqlite_file


def test_keys_older_than_a_day_are_forgotten(api: TestClient, client_id: str) -> None:
    """Answered or not: each holds the exchange's whole answer, and nothing else would delete it."""
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from app.db import utcnow
    from app.idempotency.models import IdempotencyRecord

    for key in ("old-answered", "old-in-flight", "fresh"):
        assert _on_app_loop(api, lambda store, key=key: store.claim(client_id, key, "print")) is None
    _on_app_loop(api, lambda store: store.complete(client_id, "old-answered", ANSWER))

    async def age(store: IdempotencyStore) -> None:
        async with store._async_engine.begin() as connection:
            await connection.execute(update(IdempotencyRecord).where(IdempotencyRecord.key.like("old-%")).values(
                created_at=utcnow() - timedelta(hours=25)))

    async def keys(store: IdempotencyStore) -> list[str]:
        async with store._async_engine.connect() as connection:
            rows = await connection.execute(select(IdempotencyRecord.key).where(
                IdempotencyRecord.client_id == client_id).order_by(func.lower(IdempotencyRecord.key)))
            return [row.key for row in rows]

    _on_app_loop(api, age)
    assert _on_app_loop(api, lambda store: store.purge_expired()) == 2
    assert _on_app_loop(api, keys) == ["fresh"]


def test_a_backlog_is_purged_in_batches(api: TestClient, client_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.db import utcnow
    from app.idempotency import store as store_module
    from app.idempotency.models import IdempotencyRecord

    monkeypatch.setattr(store_module, "PURGE_BATCH", 3)
    for n in range(7):
        assert _on_app_loop(api, lambda store, n=n: store.claim(client_id, f"old-{n}", "print")) is None

    async def age(store: IdempotencyStore) -> None:
        async with store._async_engine.begin() as connection:
            await connection.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25)))

    _on_app_loop(api, age)
    assert _on_app_loop(api, lambda store: store.purge_expired()) == 7
    assert _on_app_loop(api, lambda store: store.purge_expired()) == 0


def test_a_starting_replica_forgets_expired_keys(tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import select, update

    from app.db import utcnow
    from app.idempotency.models import IdempotencyRecord
    from app.main import create_app

    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}")
    with TestClient(create_app(settings)) as first:
        created = first.post("/admin/clients", headers=ADMIN, json={"name": "keyed-bot", "permissions": ["trade"]})
        client_id = str(created.json()["id"])
        assert _on_app_loop(first, lambda store: store.claim(client_id, "old", "print")) is None

        async def age(store: IdempotencyStore) -> None:
            async with store._async_engine.begin() as connection:
                await connection.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=25)))

        _on_app_loop(first, age)

    async def keys(store: IdempotencyStore) -> list[str]:
        async with store._async_engine.connect() as connection:
            return [row.key for row in await connection.execute(select(IdempotencyRecord.key))]

    with TestClient(create_app(settings)) as second:
        for _ in range(50):  # the purge runs beside start-up, in the store's thread
            if not _on_app_loop(second, keys):
                break
            time.sleep(0.05)
        assert _on_app_loop(second, keys) == []
