"""Master-key rotation across replicas: promote once, every replica seals with it; retire only when unused."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.settings import Settings
from app.vault.keyring import load_keyring, parse_key
from app.vault.rewrap import rewrap_all
from tests.conftest import (
    ADMIN,
    MASTER_KEY_A,
    MASTER_KEY_B,
    _asyncpg_dsn,
    assert_problem,
    create_credential,
    credential_body,
    make_settings,
)
from tests.vault.test_vault_storage import KEY_A_ID, KEY_B_ID, open_credential


def sealing(api: TestClient) -> str:
    keys = api.get("/admin/vault/keys", headers=ADMIN).json()["items"]
    return next(k["id"] for k in keys if k["sealing"])


def sealed_under(api: TestClient, ref: str) -> str:
    versions = api.get(f"/admin/credentials/{ref}", headers=ADMIN).json()["versions"]
    return str(versions[-1]["master_key_id"])


def test_rotate_the_master_key_across_two_replicas(
    tmp_path: Path, database_url: str, make_client: Callable[[Settings], TestClient],
) -> None:
    # Step 1: the new key B is added to every replica's configuration (A still first, still sealing).
    both = SecretStr(f"{MASTER_KEY_A},{MASTER_KEY_B}")
    one = make_client(make_settings(tmp_path / "one", database_url, master_keys=both))
    two = make_client(make_settings(tmp_path / "two", database_url, master_keys=both))
    old = create_credential(one, label="before")
    assert sealed_under(one, "before") == KEY_A_ID and sealing(two) == KEY_A_ID

    # Step 2: promote B once; the other replica seals with it at once, no restart.
    promoted = one.post(f"/admin/vault/keys/{KEY_B_ID}/promote", headers=ADMIN)
    assert promoted.status_code == 200, promoted.text
    assert sealing(two) == KEY_B_ID
    create_credential(two, label="after")
    assert sealed_under(two, "after") == KEY_B_ID
    assert open_credential(one, "after").api_key  # replica one reads what two sealed under B

    # Step 3: A cannot be retired while rows need it; B, sealing, neither.
    refused = assert_problem(one.post(f"/admin/vault/keys/{KEY_A_ID}/retire", headers=ADMIN), 409,
                             "master-key-in-use")
    assert "rewrap" in refused["detail"]
    assert_problem(one.post(f"/admin/vault/keys/{KEY_B_ID}/retire", headers=ADMIN), 409)

    # Step 4: rewrap, then A retires.
    ring = load_keyring(make_settings(tmp_path, database_url, master_keys=both))
    assert one.portal is not None
    report = one.portal.call(lambda: rewrap_all(one.app.state.sessionmaker, ring))  # type: ignore[attr-defined]
    assert (report.target, report.remaining) == (KEY_B_ID, 0)
    retired = one.post(f"/admin/vault/keys/{KEY_A_ID}/retire", headers=ADMIN).json()["items"]
    assert next(k for k in retired if k["id"] == KEY_A_ID)["rows"] == 0
    assert open_credential(two, old["id"]).api_key
    assert_problem(one.post(f"/admin/vault/keys/{KEY_A_ID}/promote", headers=ADMIN), 409)


def test_promoting_a_key_this_replica_lacks_is_404(api: TestClient) -> None:
    assert_problem(api.post(f"/admin/vault/keys/{KEY_B_ID}/promote", headers=ADMIN), 404)
    assert_problem(api.post("/admin/vault/keys/mk_nothing/retire", headers=ADMIN), 404)


def test_a_replica_without_the_sealing_key_refuses_to_seal_under_an_older_one(
    tmp_path: Path, database_url: str, make_client: Callable[[Settings], TestClient],
) -> None:
    """B is promoted but one replica's configuration was not given it: sealing there under A would
    leave rows that need A after ops have rewrapped and retired it."""
    both, only_a = SecretStr(f"{MASTER_KEY_A},{MASTER_KEY_B}"), SecretStr(MASTER_KEY_A)
    one = make_client(make_settings(tmp_path / "one", database_url, master_keys=both))
    two = make_client(make_settings(tmp_path / "two", database_url, master_keys=only_a))
    old = create_credential(two, label="before")
    assert one.post(f"/admin/vault/keys/{KEY_B_ID}/promote", headers=ADMIN).status_code == 200

    refused = assert_problem(two.post("/admin/credentials", json=credential_body(label="after"), headers=ADMIN),
                             503, "sealing-key-missing")
    assert KEY_B_ID in refused["detail"]
    assert two.get("/admin/credentials/after", headers=ADMIN).status_code == 404  # nothing stored
    assert open_credential(two, old["id"]).api_key  # what it holds keys for, it still opens
    keys = {k["id"]: k for k in two.get("/admin/vault/keys", headers=ADMIN).json()["items"]}
    assert keys[KEY_B_ID]["sealing"] and not keys[KEY_B_ID]["configured_here"]


class TableLock:
    """Another session holding `LOCK TABLE ... IN EXCLUSIVE MODE`: writes to the table wait, reads go on."""

    def __init__(self, database_url: str, table: str) -> None:
        self._dsn, self._table = _asyncpg_dsn(database_url), table
        self._locked, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    def __enter__(self) -> TableLock:
        self._thread.start()
        assert self._locked.wait(10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)

    async def _hold(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            async with connection.transaction():
                await connection.execute(f"LOCK TABLE {self._table} IN EXCLUSIVE MODE")
                self._locked.set()
                while not self._release.is_set():
                    await asyncio.sleep(0.01)
        finally:
            await connection.close()


def sessions_waiting_on_locks(database_url: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            return int(await connection.fetchval("SELECT count(*) FROM pg_stat_activity "
                                                  "WHERE wait_event_type = 'Lock' AND datname = current_database()"))
        finally:
            await connection.close()

    return asyncio.run(count())


def until_blocked(database_url: str, sessions: int, work: Future[Any], *, or_done: bool = False) -> None:
    """Until `sessions` sessions wait on a lock. `work` finishing first fails, unless `or_done`
    (the code before a fix did not wait)."""
    deadline = time.monotonic() + 10
    while sessions_waiting_on_locks(database_url) < sessions:
        if work.done():
            assert or_done, "it did not wait"
            return
        assert time.monotonic() < deadline, "nothing waited"
        time.sleep(0.05)


def retire_racing(api: TestClient, database_url: str, pool: ThreadPoolExecutor, lock: TableLock, *,
                  promote: str, retire: str) -> Any:
    """Promote one key and ask to retire another while `lock` holds a write under it back, then
    let the write go: the retirement's answer."""
    assert api.post(f"/admin/vault/keys/{promote}/promote", headers=ADMIN).status_code == 200
    retiring = pool.submit(api.post, f"/admin/vault/keys/{retire}/retire", headers=ADMIN)
    until_blocked(database_url, 2, retiring, or_done=True)
    lock.release()
    return retiring.result()


def test_a_key_is_not_retired_while_a_row_sealed_under_it_is_being_written(
    tmp_path: Path, database_url_postgres: str, make_client: Callable[[Settings], TestClient],
) -> None:
    """The retirement counted committed rows only: a credential sealed under A, not yet committed
    when B was promoted and A retired, landed afterwards needing a retired key."""
    api = make_client(make_settings(tmp_path, database_url_postgres,
                                    master_keys=SecretStr(f"{MASTER_KEY_A},{MASTER_KEY_B}")))
    with ThreadPoolExecutor(2) as pool, TableLock(database_url_postgres, "credential_versions") as lock:
        creating = pool.submit(api.post, "/admin/credentials", json=credential_body(label="late"), headers=ADMIN)
        until_blocked(database_url_postgres, 1, creating)  # sealed under A, its row waits
        retired = retire_racing(api, database_url_postgres, pool, lock, promote=KEY_B_ID, retire=KEY_A_ID)
        assert creating.result().status_code == 201
        assert_problem(retired, 409, "master-key-in-use")
    assert sealed_under(api, "late") == KEY_A_ID


def test_a_key_rows_are_being_rewrapped_under_is_not_retired_under_them(
    tmp_path: Path, database_url_postgres: str, make_client: Callable[[Settings], TestClient],
) -> None:
    """Rewrap moves rows onto B; C is promoted and B retired before its batch commits. The batch
    holds B as a seal does: the retirement waits for it, then counts its rows."""
    key_c = base64.b64encode(b"C" * 32).decode()
    settings = make_settings(tmp_path, database_url_postgres,
                             master_keys=SecretStr(f"{MASTER_KEY_A},{MASTER_KEY_B},{key_c}"))
    api = make_client(settings)
    create_credential(api, label="old")
    assert api.post(f"/admin/vault/keys/{KEY_B_ID}/promote", headers=ADMIN).status_code == 200
    ring = load_keyring(settings)
    assert api.portal is not None
    portal = api.portal
    with ThreadPoolExecutor(2) as pool, TableLock(database_url_postgres, "credential_versions") as lock:
        rewrapping = pool.submit(lambda: portal.call(
            lambda: rewrap_all(api.app.state.sessionmaker, ring)))  # type: ignore[attr-defined]
        until_blocked(database_url_postgres, 1, rewrapping)  # its batch's UPDATE waits
        retired = retire_racing(api, database_url_postgres, pool, lock, promote=parse_key(key_c, "c").id,
                                retire=KEY_B_ID)
        assert rewrapping.result().rewrapped == 1
        assert_problem(retired, 409, "master-key-in-use")
    assert sealed_under(api, "old") == KEY_B_ID
