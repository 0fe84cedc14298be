"""`/admin/clients` and `/me`, through HTTP against the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    TABLES,
    assert_problem,
    create_client,
    create_credential,
    run_db,
)

TOKEN_HEADER = "X-Signvault-Token"


def as_client(token: str) -> dict[str, str]:
    return {TOKEN_HEADER: token}


def ref(credential: dict[str, Any]) -> dict[str, str]:
    return {"id": credential["id"], "exchange": credential["exchange"], "label": credential["label"]}


def refs(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    return sorted((ref(c) for c in items), key=lambda c: c["id"])


def new_name() -> str:
    return f"bot-{uuid.uuid4().hex[:8]}"


def db_rows(api: TestClient, sql: str, **params: Any) -> list[dict[str, Any]]:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        result = await session.execute(text(sql), params)
        return [dict(row._mapping) for row in result]

    return run_db(api, work)


def field_names(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem.get("errors") or []]


class TestCreateClient:
    def test_returns_201_with_a_one_time_sv_token_and_the_scoped_credentials(self, api: TestClient) -> None:
        first, second = create_credential(api), create_credential(api, exchange="bybit")
        name = new_name()
        response = api.post("/admin/clients", headers=ADMIN,
                            json={"name": name, "credentials": [first["id"], second["id"]]})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["token"].startswith("sv_")
        assert len(body["token"]) > 40
        assert body["name"] == name
        assert body["active"] is True
        assert body["revoked_at"] is None
        assert refs(body["credentials"]) == refs([first, second])
        assert set(body["credentials"][0]) == {"id", "exchange", "label"}

    def test_permissions_default_to_read(self, api: TestClient) -> None:
        response = api.post("/admin/clients", headers=ADMIN, json={"name": new_name()})
        assert response.status_code == 201, response.text
        assert response.json()["permissions"] == ["read"]
        assert response.json()["credentials"] == []

    def test_permissions_are_kept_deduplicated_and_ordered(self, api: TestClient) -> None:
        body = create_client(api, permissions=["withdraw", "read", "read"])
        assert body["permissions"] == ["read", "withdraw"]

    def test_each_client_gets_its_own_token(self, api: TestClient) -> None:
        assert create_client(api)["token"] != create_client(api)["token"]


class TestCreateClientCredentialRefs:
    def test_credentials_may_be_named_by_id_or_by_label(self, api: TestClient) -> None:
        by_id, by_label = create_credential(api), create_credential(api, exchange="bybit")
        body = create_client(api, credentials=[by_id["id"], by_label["label"]])
        assert refs(body["credentials"]) == refs([by_id, by_label])

    def test_exchange_colon_label_names_a_credential(self, api: TestClient) -> None:
        credential = create_credential(api)
        body = create_client(api, credentials=[f"{credential['exchange']}:{credential['label']}"])
        assert refs(body["credentials"]) == refs([credential])

    def test_the_same_credential_named_twice_is_listed_once(self, api: TestClient) -> None:
        credential = create_credential(api)
        body = create_client(api, credentials=[credential["id"], credential["label"]])
        assert refs(body["credentials"]) == refs([credential])

    def test_unknown_credential_is_422_naming_its_index(self, api: TestClient) -> None:
        known = create_credential(api)
        name = new_name()
        response = api.post("/admin/clients", headers=ADMIN,
                            json={"name": name, "credentials": [known["id"], "no-such-credential"]})
        problem = assert_problem(response, 422, "validation-error")
        assert field_names(problem) == ["credentials.1"]
        # Nothing was created.
        assert_problem(api.get(f"/admin/clients/{name}", headers=ADMIN), 404)

    def test_every_unknown_credential_is_named(self, api: TestClient) -> None:
        response = api.post("/admin/clients", headers=ADMIN,
                            json={"name": new_name(), "credentials": ["nope-a", "nope-b"]})
        problem = assert_problem(response, 422, "validation-error")
        assert field_names(problem) == ["credentials.0", "credentials.1"]


class TestCreateClientValidation:
    def test_duplicate_name_is_409(self, api: TestClient) -> None:
        name = create_client(api)["name"]
        response = api.post("/admin/clients", headers=ADMIN, json={"name": name})
        assert_problem(response, 409, "client-name-taken")
        names = [c["name"] for c in api.get("/admin/clients", headers=ADMIN).json()["items"]]
        assert names.count(name) == 1

    def test_bad_names_are_422(self, api: TestClient) -> None:
        for bad in ["", "-leading-dash", "has space", "slash/name", "x" * 65, "ümlaut"]:
            response = api.post("/admin/clients", headers=ADMIN, json={"name": bad})
            problem = assert_problem(response, 422, "validation-error")
            assert field_names(problem) == ["name"], bad

    def test_unknown_body_field_is_422(self, api: TestClient) -> None:
        response = api.post("/admin/clients", headers=ADMIN,
                            json={"name": new_name(), "token": "sv_chosen-by-caller"})
        problem = assert_problem(response, 422, "validation-error")
        assert field_names(problem) == ["body"]  # the unknown name is not repeated

    def test_unknown_permission_is_422(self, api: TestClient) -> None:
        response = api.post("/admin/clients", headers=ADMIN, json={"name": new_name(), "permissions": ["admin"]})
        problem = assert_problem(response, 422, "validation-error")
        assert field_names(problem) == ["permissions.0"]

    def test_needs_the_admin_token(self, api: TestClient) -> None:
        assert_problem(api.post("/admin/clients", json={"name": new_name()}), 401, "not-authenticated")
        assert api.get("/admin/clients", headers=ADMIN).json()["items"] == []


class TestReadClients:
    def test_list_returns_every_client_without_tokens(self, api: TestClient) -> None:
        credential = create_credential(api)
        one = create_client(api, credentials=[credential["id"]])
        two = create_client(api)
        response = api.get("/admin/clients", headers=ADMIN)
        assert response.status_code == 200
        items = {c["name"]: c for c in response.json()["items"]}
        assert set(items) == {one["name"], two["name"]}
        assert refs(items[one["name"]]["credentials"]) == refs([credential])
        assert "token" not in items[one["name"]]
        assert one["token"] not in response.text and two["token"] not in response.text

    def test_get_by_id_and_by_name(self, api: TestClient) -> None:
        credential = create_credential(api)
        created = create_client(api, credentials=[credential["label"]])
        expected = {k: v for k, v in created.items() if k != "token"}
        for key in (created["id"], created["name"]):
            response = api.get(f"/admin/clients/{key}", headers=ADMIN)
            assert response.status_code == 200, response.text
            assert response.json() == expected
            assert "token" not in response.json()
            assert created["token"] not in response.text

    def test_unknown_client_is_404(self, api: TestClient) -> None:
        assert_problem(api.get("/admin/clients/nobody", headers=ADMIN), 404, "client-not-found")
        assert_problem(api.get(f"/admin/clients/{uuid.uuid4()}", headers=ADMIN), 404, "client-not-found")
        assert_problem(api.patch("/admin/clients/nobody", headers=ADMIN, json={}), 404, "client-not-found")
        assert_problem(api.delete("/admin/clients/nobody", headers=ADMIN), 404, "client-not-found")
        assert_problem(api.post("/admin/clients/nobody/rotate-token", headers=ADMIN), 404, "client-not-found")


class TestClientRefPrecedence:
    def test_an_id_names_its_client_even_when_another_client_is_named_after_it(self, api: TestClient) -> None:
        target = create_client(api)
        impostor = create_client(api, name=target["id"])
        # Any update moves the target's row behind the impostor's in PostgreSQL's heap.
        assert api.patch(f"/admin/clients/{target['name']}", headers=ADMIN,
                         json={"permissions": ["read"]}).status_code == 200
        assert api.get(f"/admin/clients/{target['id']}", headers=ADMIN).json()["id"] == target["id"]
        assert api.delete(f"/admin/clients/{target['id']}", headers=ADMIN).status_code == 204
        assert_problem(api.get("/me", headers=as_client(target["token"])), 401)
        assert api.get("/me", headers=as_client(impostor["token"])).status_code == 200


class TestUpdateClient:
    def test_patch_replaces_the_credentials(self, api: TestClient) -> None:
        old, new_a, new_b = create_credential(api), create_credential(api), create_credential(api)
        client = create_client(api, credentials=[old["id"]])
        response = api.patch(f"/admin/clients/{client['name']}", headers=ADMIN,
                             json={"credentials": [new_a["label"], new_b["id"]]})
        assert response.status_code == 200, response.text
        assert refs(response.json()["credentials"]) == refs([new_a, new_b])
        assert response.json()["permissions"] == client["permissions"]
        me = api.get("/me", headers=as_client(client["token"])).json()
        assert refs(me["credentials"]) == refs([new_a, new_b])

    def test_patch_with_an_empty_list_removes_every_credential(self, api: TestClient) -> None:
        client = create_client(api, credentials=[create_credential(api)["id"]])
        response = api.patch(f"/admin/clients/{client['id']}", headers=ADMIN, json={"credentials": []})
        assert response.status_code == 200, response.text
        assert response.json()["credentials"] == []

    def test_patch_permissions_leaves_credentials_alone(self, api: TestClient) -> None:
        credential = create_credential(api)
        client = create_client(api, credentials=[credential["id"]], permissions=["read"])
        response = api.patch(f"/admin/clients/{client['id']}", headers=ADMIN,
                             json={"permissions": ["trade", "read"]})
        assert response.status_code == 200, response.text
        assert response.json()["permissions"] == ["read", "trade"]
        assert refs(response.json()["credentials"]) == refs([credential])
        assert api.get("/me", headers=as_client(client["token"])).json()["permissions"] == ["read", "trade"]

    def test_patch_with_an_unknown_credential_is_422_and_changes_nothing(self, api: TestClient) -> None:
        credential = create_credential(api)
        client = create_client(api, credentials=[credential["id"]])
        response = api.patch(f"/admin/clients/{client['id']}", headers=ADMIN,
                             json={"credentials": [credential["id"], "missing"], "permissions": ["withdraw"]})
        problem = assert_problem(response, 422, "validation-error")
        assert field_names(problem) == ["credentials.1"]
        after = api.get(f"/admin/clients/{client['id']}", headers=ADMIN).json()
        assert refs(after["credentials"]) == refs([credential])
        assert after["permissions"] == client["permissions"]

    def test_concurrent_replacements_do_not_merge(self, api: TestClient) -> None:
        """Each PATCH replaces the whole list: of two at once, one wins whole (the other's list
        never mixes in), and neither fails."""
        kept, dropped, *added = (create_credential(api) for _ in range(4))
        for round_ in range(8):
            url = f"/admin/clients/{create_client(api, credentials=[kept['id'], dropped['id']])['id']}"
            lists = [sorted([kept["id"], added[0]["id"]]), sorted([kept["id"], added[1]["id"]])]
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(
                    lambda ids, url=url: api.patch(url, headers=ADMIN, json={"credentials": ids}), lists))
            assert [a.status_code for a in answers] == [200, 200], (round_, [a.text for a in answers])
            final = sorted(c["id"] for c in api.get(url, headers=ADMIN).json()["credentials"])
            assert final in lists, (round_, final)

    def test_patch_refuses_unknown_fields(self, api: TestClient) -> None:
        client = create_client(api)
        response = api.patch(f"/admin/clients/{client['id']}", headers=ADMIN, json={"name": "renamed"})
        assert field_names(assert_problem(response, 422, "validation-error")) == ["body"]


class TestWhoami:
    def test_me_lists_the_clients_credentials(self, api: TestClient) -> None:
        mine, other = create_credential(api), create_credential(api)
        client = create_client(api, credentials=[mine["id"]], permissions=["read", "trade"])
        response = api.get("/me", headers=as_client(client["token"]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == client["name"]
        assert body["permissions"] == ["read", "trade"]
        assert refs(body["credentials"]) == refs([mine])
        assert other["id"] not in response.text

    def test_me_without_a_token_is_401(self, api: TestClient) -> None:
        response = api.get("/me")
        assert_problem(response, 401, "not-authenticated")
        assert response.headers["www-authenticate"] == TOKEN_HEADER

    def test_me_with_a_garbage_token_is_401(self, api: TestClient) -> None:
        create_client(api)
        for garbage in ["sv_garbage", "garbage", "x" * 500]:
            assert_problem(api.get("/me", headers=as_client(garbage)), 401, "not-authenticated")

    def test_me_with_the_admin_token_is_401(self, api: TestClient) -> None:
        create_client(api)
        assert_problem(api.get("/me", headers=ADMIN), 401, "not-authenticated")
        assert_problem(api.get("/me", headers=as_client(ADMIN_TOKEN)), 401, "not-authenticated")

    def test_client_token_as_bearer_on_me_is_401(self, api: TestClient) -> None:
        token = create_client(api)["token"]
        assert_problem(api.get("/me", headers={"Authorization": f"Bearer {token}"}), 401, "not-authenticated")


class TestClientTokenIsNotAdmin:
    def test_client_token_as_admin_bearer_is_401(self, api: TestClient) -> None:
        token = create_client(api)["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert_problem(api.get("/admin/credentials", headers=bearer), 401, "not-authenticated")
        assert_problem(api.get("/admin/clients", headers=bearer), 401, "not-authenticated")
        assert_problem(api.get("/admin/audit", headers=bearer), 401, "not-authenticated")
        response = api.post("/admin/clients", headers=bearer, json={"name": new_name()})
        assert_problem(response, 401, "not-authenticated")
        assert len(api.get("/admin/clients", headers=ADMIN).json()["items"]) == 1

    def test_client_token_header_does_not_open_admin_routes(self, api: TestClient) -> None:
        token = create_client(api)["token"]
        assert_problem(api.get("/admin/credentials", headers=as_client(token)), 401, "not-authenticated")


class TestRevokeClient:
    def test_revoke_is_204_then_the_token_fails_and_the_client_stays_listed(self, api: TestClient) -> None:
        client = create_client(api, credentials=[create_credential(api)["id"]])
        assert api.get("/me", headers=as_client(client["token"])).status_code == 200
        response = api.delete(f"/admin/clients/{client['name']}", headers=ADMIN)
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(api.get("/me", headers=as_client(client["token"])), 401, "not-authenticated")
        listed = {c["id"]: c for c in api.get("/admin/clients", headers=ADMIN).json()["items"]}
        assert listed[client["id"]]["active"] is False
        assert listed[client["id"]]["revoked_at"] is not None
        one = api.get(f"/admin/clients/{client['id']}", headers=ADMIN).json()
        assert one["active"] is False

    def test_revoke_leaves_other_clients_working(self, api: TestClient) -> None:
        revoked, kept = create_client(api), create_client(api)
        assert api.delete(f"/admin/clients/{revoked['id']}", headers=ADMIN).status_code == 204
        assert api.get("/me", headers=as_client(kept["token"])).json()["name"] == kept["name"]

    def test_revoking_twice_keeps_the_first_revocation_time(self, api: TestClient) -> None:
        client = create_client(api)
        assert api.delete(f"/admin/clients/{client['id']}", headers=ADMIN).status_code == 204
        first = api.get(f"/admin/clients/{client['id']}", headers=ADMIN).json()["revoked_at"]
        assert api.delete(f"/admin/clients/{client['id']}", headers=ADMIN).status_code == 204
        assert api.get(f"/admin/clients/{client['id']}", headers=ADMIN).json()["revoked_at"] == first


class TestRotateClientToken:
    def test_old_token_fails_and_new_token_works(self, api: TestClient) -> None:
        credential = create_credential(api)
        client = create_client(api, credentials=[credential["id"]])
        response = api.post(f"/admin/clients/{client['name']}/rotate-token", headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        new_token = body["token"]
        assert new_token.startswith("sv_")
        assert new_token != client["token"]
        assert body["id"] == client["id"]
        assert body["token_rotated_at"] >= client["token_rotated_at"]
        assert refs(body["credentials"]) == refs([credential])
        assert_problem(api.get("/me", headers=as_client(client["token"])), 401, "not-authenticated")
        me = api.get("/me", headers=as_client(new_token))
        assert me.status_code == 200
        assert refs(me.json()["credentials"]) == refs([credential])

    def test_rotating_a_revoked_client_is_409(self, api: TestClient) -> None:
        client = create_client(api)
        assert api.delete(f"/admin/clients/{client['id']}", headers=ADMIN).status_code == 204
        response = api.post(f"/admin/clients/{client['id']}/rotate-token", headers=ADMIN)
        assert_problem(response, 409, "client-revoked")
        assert "sv_" not in response.text
        assert_problem(api.get("/me", headers=as_client(client["token"])), 401)


class TestCredentialDeletion:
    def test_deleting_a_credential_removes_it_from_its_clients(self, api: TestClient) -> None:
        gone, kept = create_credential(api), create_credential(api)
        client = create_client(api, credentials=[gone["id"], kept["id"]])
        assert api.delete(f"/admin/credentials/{gone['id']}", headers=ADMIN).status_code == 204
        listed = api.get(f"/admin/clients/{client['id']}", headers=ADMIN).json()
        assert refs(listed["credentials"]) == refs([kept])
        me = api.get("/me", headers=as_client(client["token"])).json()
        assert refs(me["credentials"]) == refs([kept])
        assert db_rows(api, "SELECT * FROM client_credentials WHERE credential_id = :id", id=gone["id"]) == []


    def test_a_grant_racing_the_credentials_delete_is_either_made_and_then_gone_or_refused(
            self, api: TestClient) -> None:
        for round_ in range(8):
            doomed = create_credential(api)
            client = create_client(api)
            grant = {"credentials": [doomed["id"]]}
            calls = [functools.partial(api.patch, f"/admin/clients/{client['id']}", headers=ADMIN, json=grant),
                     functools.partial(api.post, "/admin/clients", headers=ADMIN,
                                       json={"name": new_name(), "permissions": ["read"], **grant}),
                     functools.partial(api.delete, f"/admin/credentials/{doomed['id']}", headers=ADMIN)]
            with ThreadPoolExecutor(3) as pool:
                patched, created, deleted = [f.result() for f in [pool.submit(call) for call in calls]]
            assert deleted.status_code == 204, round_
            assert patched.status_code in (200, 422) and created.status_code in (201, 422), (
                round_, patched.text, created.text)
            assert api.get(f"/admin/clients/{client['id']}", headers=ADMIN).json()["credentials"] == []


class TestTokenStorage:
    def _all_values(self, api: TestClient) -> list[Any]:
        values: list[Any] = []
        for table in (t.strip() for t in TABLES.split(",")):
            for row in db_rows(api, f"SELECT * FROM {table}"):
                values.extend(row.values())
        return values

    def _assert_nowhere_in_database(self, api: TestClient, token: str) -> None:
        for value in self._all_values(api):
            if isinstance(value, bytes):
                assert token.encode() not in value
            else:
                assert token not in str(value)

    def test_only_the_sha256_of_the_token_is_stored(self, api: TestClient) -> None:
        client = create_client(api, credentials=[create_credential(api)["id"]])
        token = client["token"]
        api.get("/me", headers=as_client(token))  # an audited call by the client, too
        rows = db_rows(api, "SELECT token_hash FROM clients WHERE id = :id", id=client["id"])
        assert rows == [{"token_hash": hashlib.sha256(token.encode()).hexdigest()}]
        self._assert_nowhere_in_database(api, token)

    def test_rotated_token_replaces_the_stored_hash(self, api: TestClient) -> None:
        client = create_client(api)
        new_token = api.post(f"/admin/clients/{client['id']}/rotate-token", headers=ADMIN).json()["token"]
        rows = db_rows(api, "SELECT token_hash FROM clients WHERE id = :id", id=client["id"])
        assert rows == [{"token_hash": hashlib.sha256(new_token.encode()).hexdigest()}]
        self._assert_nowhere_in_database(api, client["token"])
        self._assert_nowhere_in_database(api, new_token)

    def test_token_is_not_returned_by_reads(self, api: TestClient) -> None:
        client = create_client(api)
        listed = api.get("/admin/clients", headers=ADMIN)
        one = api.get(f"/admin/clients/{client['id']}", headers=ADMIN)
        audit = api.get("/admin/audit", headers=ADMIN)
        for response in (listed, one, audit):
            assert response.status_code == 200
            assert client["token"] not in response.text
        assert "token" not in listed.json()["items"][0]
        assert "token" not in one.json()
        patched = api.patch(f"/admin/clients/{client['id']}", headers=ADMIN, json={"permissions": ["read"]})
        assert "token" not in patched.json()
        assert client["token"] not in patched.text
