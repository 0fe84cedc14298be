"""The audit log: written by the middleware for every authenticated request, read through /admin/audit."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    assert_problem,
    create_client,
    create_credential,
    credential_body,
    random_secret,
    run_db,
)

ADMIN_ACTOR = "env:SIGNVAULT_ADMIN_TOKEN"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def audit(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get("/admin/audit", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def items(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = audit(api, limit=500, **params)["items"]
    return result


def db_rows(api: TestClient, sql: str = "SELECT * FROM audit_events ORDER BY id") -> list[dict[str, Any]]:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return [dict(row._mapping) for row in await session.execute(text(sql))]

    return run_db(api, work)


def row_count(api: TestClient) -> int:
    async def work(session: AsyncSession) -> int:
        return int((await session.execute(text("SELECT count(*) FROM audit_events"))).scalar_one())

    return run_db(api, work)


def rotate_body(**overrides: Any) -> dict[str, Any]:
    body = {"api_key": "K" + random_secret(40), "api_secret": random_secret(64)}
    body.update(overrides)
    return body


def pause() -> None:
    """Let the clock move on so that rows on either side of a timestamp cannot share it."""
    time.sleep(0.02)


class TestAdminActionsAreAudited:
    def test_create_and_rotate_credential_rows(self, api: TestClient) -> None:
        credential = create_credential(api, exchange="bybit")
        rotated = api.post(f"/admin/credentials/{credential['label']}/rotate?force=true", headers=ADMIN,
                           json=rotate_body())
        assert rotated.status_code == 200, rotated.text

        [created] = items(api, action="create_credential")
        assert created["actor_kind"] == "admin"
        assert created["actor"] == ADMIN_ACTOR
        assert created["method"] == "POST"
        assert created["path"] == "/admin/credentials"
        assert created["status"] == 201
        assert isinstance(created["latency_ms"], float) and created["latency_ms"] >= 0
        assert created["credential_id"] == credential["id"]
        assert created["credential_label"] == credential["label"]
        assert created["credential_version"] == 1
        assert created["exchange"] == "bybit"
        assert HEX_ID.match(created["request_id"])
        datetime.fromisoformat(created["occurred_at"])

        [rotation] = items(api, action="rotate_credential")
        assert rotation["method"] == "POST"
        assert rotation["path"] == f"/admin/credentials/{credential['label']}/rotate"
        assert rotation["status"] == 200
        assert rotation["credential_id"] == credential["id"]
        assert rotation["credential_label"] == credential["label"]
        assert rotation["credential_version"] == 2
        assert rotation["exchange"] == "bybit"
        assert rotation["id"] > created["id"]

    def test_read_update_and_delete_credential_rows(self, api: TestClient) -> None:
        credential = create_credential(api)
        assert api.get(f"/admin/credentials/{credential['id']}", headers=ADMIN).status_code == 200
        assert api.patch(f"/admin/credentials/{credential['id']}", headers=ADMIN,
                         json={"enabled": False}).status_code == 200
        assert api.delete(f"/admin/credentials/{credential['id']}", headers=ADMIN).status_code == 204
        rows = items(api, credential=credential["id"])
        assert [(r["action"], r["method"], r["status"]) for r in rows] == [
            ("delete_credential", "DELETE", 204),
            ("update_credential", "PATCH", 200),
            ("get_credential", "GET", 200),
            ("create_credential", "POST", 201),
        ]
        assert {r["credential_label"] for r in rows} == {credential["label"]}
        assert {r["exchange"] for r in rows} == {"binance"}

    def test_client_admin_rows_name_the_route(self, api: TestClient) -> None:
        client = create_client(api)
        api.post(f"/admin/clients/{client['id']}/rotate-token", headers=ADMIN)
        api.delete(f"/admin/clients/{client['id']}", headers=ADMIN)
        rows = items(api, actor=ADMIN_ACTOR)
        assert [(r["action"], r["method"], r["status"]) for r in rows] == [
            ("revoke_client", "DELETE", 204),
            ("rotate_client_token", "POST", 200),
            ("create_client", "POST", 201),
        ]
        assert all(r["credential_id"] is None and r["exchange"] is None for r in rows)

    def test_reading_the_audit_log_is_itself_audited(self, api: TestClient) -> None:
        audit(api)
        [row] = items(api, action="list_audit_events")
        assert row["path"] == "/admin/audit"
        assert row["status"] == 200


class TestFailedActionsAreAudited:
    def test_duplicate_label_409_is_recorded(self, api: TestClient) -> None:
        credential = create_credential(api)
        response = api.post("/admin/credentials", headers=ADMIN, json=credential_body(label=credential["label"]))
        assert_problem(response, 409, "label-taken")
        rows = items(api, action="create_credential")
        assert [r["status"] for r in rows] == [409, 201]
        assert rows[0]["actor"] == ADMIN_ACTOR

    def test_invalid_input_422_is_recorded(self, api: TestClient) -> None:
        assert_problem(api.post("/admin/credentials", headers=ADMIN,
                                json=credential_body(exchange="no-such-exchange")), 422)
        assert_problem(api.post("/admin/credentials", headers=ADMIN, json={"exchange": "binance"}), 422)
        assert_problem(api.post("/admin/clients", headers=ADMIN,
                                json={"name": "bot-x", "credentials": ["missing"]}), 422)
        assert [(r["action"], r["status"]) for r in items(api, status=422)] == [
            ("create_client", 422), ("create_credential", 422), ("create_credential", 422),
        ]

    def test_not_found_404_is_recorded(self, api: TestClient) -> None:
        assert_problem(api.get("/admin/credentials/nothing-here", headers=ADMIN), 404)
        [row] = items(api, status=404)
        assert row["action"] == "get_credential"
        assert row["path"] == "/admin/credentials/nothing-here"
        assert row["credential_id"] is None


    @pytest.mark.parametrize(("path", "params"), [
        ("/admin/credentials/a%00b", None), ("/admin/clients/a%0d%0ab", None),
        ("/admin/audit", {"actor": "a\x00b"}),
    ])
    def test_control_characters_are_refused_before_reaching_the_database(
        self, api: TestClient, path: str, params: dict[str, str] | None,
    ) -> None:
        # A NUL reaching PostgreSQL would be a driver error (500) and an audit row that cannot be stored.
        assert_problem(api.get(path, headers=ADMIN, params=params), 400, "bad-request")
        assert items(api, status=500) == []


class TestAuditFilters:
    @pytest.fixture
    def history(self, api: TestClient) -> dict[str, Any]:
        binance = create_credential(api)
        bybit = create_credential(api, exchange="bybit")
        api.post(f"/admin/credentials/{binance['id']}/rotate?force=true", headers=ADMIN, json=rotate_body())
        api.post("/admin/credentials", headers=ADMIN, json=credential_body(label=binance["label"]))  # 409
        client = create_client(api, credentials=[binance["id"]])
        api.get("/me", headers={"X-Signvault-Token": client["token"]})
        return {"binance": binance, "bybit": bybit, "client": client}

    def test_by_actor(self, api: TestClient, history: dict[str, Any]) -> None:
        client_rows = items(api, actor=history["client"]["name"])
        assert [(r["actor_kind"], r["action"]) for r in client_rows] == [("client", "whoami")]
        admin_rows = items(api, actor=ADMIN_ACTOR)
        # 5 actions of the history plus the audit query just made.
        assert [r["action"] for r in admin_rows] == [
            "list_audit_events", "create_client", "create_credential", "rotate_credential",
            "create_credential", "create_credential",
        ]
        assert {r["actor_kind"] for r in admin_rows} == {"admin"}
        assert items(api, actor="nobody") == []

    def test_by_action(self, api: TestClient, history: dict[str, Any]) -> None:
        assert [r["status"] for r in items(api, action="create_credential")] == [409, 201, 201]
        assert len(items(api, action="rotate_credential")) == 1
        assert items(api, action="delete_credential") == []

    def test_by_credential_id_and_label(self, api: TestClient, history: dict[str, Any]) -> None:
        binance = history["binance"]
        by_id = items(api, credential=binance["id"])
        by_label = items(api, credential=binance["label"])
        assert [r["action"] for r in by_id] == ["rotate_credential", "create_credential"]
        assert by_label == by_id
        assert [r["action"] for r in items(api, credential=history["bybit"]["label"])] == ["create_credential"]

    def test_by_exchange(self, api: TestClient, history: dict[str, Any]) -> None:
        assert [r["credential_id"] for r in items(api, exchange="bybit")] == [history["bybit"]["id"]]
        assert {r["exchange"] for r in items(api, exchange="binance")} == {"binance"}
        assert items(api, exchange="kraken") == []

    def test_by_status(self, api: TestClient, history: dict[str, Any]) -> None:
        [conflict] = items(api, status=409)
        assert conflict["action"] == "create_credential"
        assert all(r["status"] == 201 for r in items(api, status=201))
        assert len(items(api, status=201)) == 3

    def test_filters_combine(self, api: TestClient, history: dict[str, Any]) -> None:
        rows = items(api, actor=ADMIN_ACTOR, action="create_credential", exchange="bybit", status=201)
        assert [r["credential_id"] for r in rows] == [history["bybit"]["id"]]

    def test_since_and_until(self, api: TestClient) -> None:
        create_credential(api)
        pause()
        middle = datetime.now(UTC)
        pause()
        late = create_credential(api)
        pause()
        end = datetime.now(UTC)
        after = items(api, action="create_credential", since=middle.isoformat())
        assert [r["credential_id"] for r in after] == [late["id"]]
        before = items(api, action="create_credential", until=middle.isoformat())
        assert len(before) == 1 and before[0]["credential_id"] != late["id"]
        window = items(api, action="create_credential", since=middle.isoformat(), until=end.isoformat())
        assert [r["credential_id"] for r in window] == [late["id"]]
        assert items(api, since=end.isoformat(), until=end.isoformat()) == []

    def test_a_naive_timestamp_is_read_as_utc(self, api: TestClient) -> None:
        pause()
        middle = datetime.now(UTC)
        pause()
        late = create_credential(api)
        naive = middle.replace(tzinfo=None).isoformat()
        assert [r["credential_id"] for r in items(api, action="create_credential", since=naive)] == [late["id"]]

    def test_since_and_until_with_a_utc_offset_mean_the_same_instant(
        self, api: TestClient, database_url: str, request: pytest.FixtureRequest,
    ) -> None:
        start = datetime.now(UTC) - timedelta(minutes=1)
        credential = create_credential(api)
        end = datetime.now(UTC) + timedelta(minutes=1)
        east, west = timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))
        expected = [credential["id"]]
        found = items(api, action="create_credential", since=start.astimezone(east).isoformat())
        assert [r["credential_id"] for r in found] == expected
        found = items(api, action="create_credential", until=end.astimezone(west).isoformat())
        assert [r["credential_id"] for r in found] == expected
        assert items(api, action="create_credential", since=end.astimezone(west).isoformat()) == []

    def test_bad_filter_values_are_422(self, api: TestClient) -> None:
        for params, field in [({"status": 99}, "status"), ({"status": 600}, "status"),
                              ({"since": "yesterday"}, "since"), ({"before": 0}, "before"),
                              ({"actor": "x" * 65}, "actor")]:
            problem = assert_problem(api.get("/admin/audit", headers=ADMIN, params=params), 422,
                                     "validation-error")
            assert [e["field"] for e in problem["errors"]] == [field]


class TestAuditPaging:
    def test_pages_are_disjoint_newest_first_and_end_with_null_cursor(self, api: TestClient) -> None:
        created = [create_credential(api)["id"] for _ in range(5)]
        pages: list[list[dict[str, Any]]] = []
        before: int | None = None
        while True:
            params: dict[str, Any] = {"action": "create_credential", "limit": 2}
            if before is not None:
                params["before"] = before
            page = audit(api, **params)
            pages.append(page["items"])
            before = page["next_before"]
            if before is None:
                break
            assert before == page["items"][-1]["id"]
            assert len(pages) < 10
        assert [len(p) for p in pages] == [2, 2, 1]
        ids = [r["id"] for p in pages for r in p]
        assert ids == sorted(ids, reverse=True)
        assert len(set(ids)) == len(ids)
        assert [r["credential_id"] for p in pages for r in p] == list(reversed(created))

    def test_an_exact_multiple_ends_with_an_empty_page(self, api: TestClient) -> None:
        for _ in range(4):
            create_credential(api)
        first = audit(api, action="create_credential", limit=2)
        second = audit(api, action="create_credential", limit=2, before=first["next_before"])
        assert second["next_before"] is not None
        last = audit(api, action="create_credential", limit=2, before=second["next_before"])
        assert last == {"items": [], "next_before": None}

    def test_paging_is_stable_while_new_rows_arrive(self, api: TestClient) -> None:
        for _ in range(4):
            create_credential(api)
        # Every page request writes a new (newer) audit row; the cursor must not bring it in.
        first = audit(api, limit=2)
        second = audit(api, limit=2, before=first["next_before"])
        first_ids = {r["id"] for r in first["items"]}
        second_ids = {r["id"] for r in second["items"]}
        assert not first_ids & second_ids
        assert max(second_ids) < min(first_ids)
        assert [r["action"] for r in second["items"]] == ["create_credential", "create_credential"]

    def test_limit_out_of_range_is_422(self, api: TestClient) -> None:
        for limit in (0, -1, 501, "many"):
            response = api.get("/admin/audit", headers=ADMIN, params={"limit": limit})
            problem = assert_problem(response, 422, "validation-error")
            assert [e["field"] for e in problem["errors"]] == ["limit"]

    def test_limit_bounds_are_accepted(self, api: TestClient) -> None:
        create_credential(api)
        assert len(audit(api, limit=1)["items"]) == 1
        assert audit(api, limit=500)["next_before"] is None

    def test_cursor_beyond_64_bits_is_422(self, api: TestClient) -> None:
        response = api.get("/admin/audit", headers=ADMIN, params={"before": 2**63})
        problem = assert_problem(response, 422, "validation-error")
        assert [e["field"] for e in problem["errors"]] == ["before"]


class TestUnauthenticatedRequestsAreNotAudited:
    def test_401s_write_no_row(self, api: TestClient) -> None:
        client = create_client(api)
        baseline = row_count(api)
        bad_bearer = {"Authorization": "Bearer sva_not-the-admin-token"}
        responses = [
            api.get("/admin/credentials"),
            api.get("/admin/credentials", headers=bad_bearer),
            api.post("/admin/credentials", headers=bad_bearer, json=credential_body()),
            api.get("/admin/audit", headers={"Authorization": f"Bearer {client['token']}"}),
            api.delete(f"/admin/clients/{client['id']}", headers=bad_bearer),
            api.get("/me"),
            api.get("/me", headers={"X-Signvault-Token": "sv_garbage"}),
            api.get("/me", headers={"X-Signvault-Token": ADMIN_TOKEN}),
        ]
        for response in responses:
            assert_problem(response, 401, "not-authenticated")
        assert row_count(api) == baseline

    def test_requests_that_no_one_authenticated_write_no_row(self, api: TestClient) -> None:
        assert api.get("/no-such-route").status_code == 404
        assert api.get("/no-such-route", headers=ADMIN).status_code == 404
        assert row_count(api) == 0


class TestClientCallsAreAudited:
    def test_me_writes_a_client_row(self, api: TestClient) -> None:
        client = create_client(api)
        response = api.get("/me", headers={"X-Signvault-Token": client["token"], "X-Request-ID": "me-call-1"})
        assert response.status_code == 200
        [row] = items(api, action="whoami")
        assert items(api, actor=client["name"]) == [row]
        assert row["actor_kind"] == "client"
        assert row["actor"] == client["name"]
        assert row["method"] == "GET"
        assert row["path"] == "/me"
        assert row["status"] == 200
        assert row["request_id"] == "me-call-1"


class TestNoSecretsInAudit:
    def test_audit_rows_hold_no_key_material_or_tokens(self, api: TestClient) -> None:
        body = credential_body()
        credential = create_credential(api, **{k: body[k] for k in ("label", "api_key", "api_secret")})
        rotation = rotate_body()
        api.post(f"/admin/credentials/{credential['id']}/rotate?force=true", headers=ADMIN, json=rotation)
        # A failed rotation and a misplaced secret in the query string.
        failed = rotate_body()
        api.post(f"/admin/credentials/{credential['id']}/rotate?api_secret={failed['api_secret']}",
                 headers=ADMIN, json={"api_key": failed["api_key"]})
        duplicate = credential_body(label=credential["label"])
        api.post("/admin/credentials", headers=ADMIN, json=duplicate)
        client = create_client(api, credentials=[credential["id"]])
        api.get("/me", headers={"X-Signvault-Token": client["token"]})
        api.get(f"/admin/credentials/{credential['id']}", headers=ADMIN)
        api.delete(f"/admin/credentials/{credential['id']}", headers=ADMIN)

        secrets = [body["api_key"], body["api_secret"], rotation["api_key"], rotation["api_secret"],
                   failed["api_key"], failed["api_secret"], duplicate["api_key"], duplicate["api_secret"],
                   client["token"], ADMIN_TOKEN]
        rows = db_rows(api)
        assert len(rows) >= 7
        stored = repr(rows)
        served = api.get("/admin/audit", headers=ADMIN, params={"limit": 500}).text
        for secret in secrets:
            assert secret not in stored
            assert secret not in served
            assert secret[:16] not in stored


class TestRequestId:
    def test_every_response_has_a_request_id(self, api: TestClient) -> None:
        credential = create_credential(api)
        responses = [
            api.get("/admin/credentials", headers=ADMIN),
            api.post("/admin/credentials", headers=ADMIN, json=credential_body()),
            api.delete(f"/admin/credentials/{credential['id']}", headers=ADMIN),
            api.get("/admin/credentials"),
            api.get("/me"),
            api.get("/admin/credentials/missing", headers=ADMIN),
            api.get("/no-such-route"),
            api.get("/admin/audit", headers=ADMIN, params={"limit": 0}),
        ]
        assert sorted(r.status_code for r in responses) == [200, 201, 204, 401, 401, 404, 404, 422]
        ids = [r.headers.get("x-request-id") for r in responses]
        assert all(i is not None and HEX_ID.match(i) for i in ids), ids
        assert len(set(ids)) == len(ids)

    def test_generated_request_id_is_the_one_stored(self, api: TestClient) -> None:
        response = api.get("/admin/credentials", headers=ADMIN)
        [row] = items(api, action="list_credentials")
        assert row["request_id"] == response.headers["x-request-id"]

    def test_safe_client_request_id_is_echoed_and_stored(self, api: TestClient) -> None:
        supplied = "trace-42.A_b-" + "x" * 51  # 64 characters, the longest accepted
        response = api.post("/admin/credentials", headers={**ADMIN, "X-Request-ID": supplied},
                            json=credential_body())
        assert response.status_code == 201
        assert response.headers["x-request-id"] == supplied
        [row] = items(api, action="create_credential")
        assert row["request_id"] == supplied

    def test_unsafe_client_request_id_is_replaced(self, api: TestClient) -> None:
        for unsafe in ["has space", "x" * 65, "semi;colon", "quote\"d", "new%0Aline"]:
            response = api.get("/admin/credentials", headers={**ADMIN, "X-Request-ID": unsafe})
            assert response.status_code == 200
            assert HEX_ID.match(response.headers["x-request-id"]), unsafe
        stored = {r["request_id"] for r in items(api, action="list_credentials")}
        assert len(stored) == 5
        assert all(HEX_ID.match(i) for i in stored)

    def test_a_server_error_has_a_request_id_too(self, api: TestClient) -> None:
        # Any unexpected failure will do: a table the route needs has gone missing.
        async def drop_clients(session: AsyncSession) -> None:
            await session.execute(text("ALTER TABLE clients RENAME TO clients_gone"))

        run_db(api, drop_clients)
        try:
            response = api.get("/admin/clients", headers={**ADMIN, "X-Request-ID": "failing-call"})
        finally:
            async def restore(session: AsyncSession) -> None:
                await session.execute(text("ALTER TABLE clients_gone RENAME TO clients"))

            run_db(api, restore)
        assert_problem(response, 500, "internal-error")
        assert response.headers.get("x-request-id") == "failing-call"
