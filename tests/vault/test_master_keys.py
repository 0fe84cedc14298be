"""Master-key rotation across replicas: promote once, every replica seals with it; retire only when unused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.settings import Settings
from app.vault.keyring import load_keyring
from app.vault.rewrap import rewrap_all
from tests.conftest import ADMIN, MASTER_KEY_A, MASTER_KEY_B, assert_problem, create_credential, make_settings
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
