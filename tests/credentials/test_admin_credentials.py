"""`/admin/credentials`: create, read, update, rotate, delete, and each refusal."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from tests.conftest import (
    ADMIN,
    assert_problem,
    create_client,
    create_credential,
    credential_body,
)
from tests.credentials.keys import b64, ec_pem, ed25519_pem, encrypted_pem, rsa_pem

SECRET_FIELDS = {"api_secret", "secret", "passphrase", "ciphertext", "wrapped_key"}


def post(api: TestClient, **overrides: Any) -> Any:
    return api.post("/admin/credentials", json=credential_body(**overrides), headers=ADMIN)


def field_error(response: Any, field: str) -> str:
    body = assert_problem(response, 422, "validation-error")
    messages = [e["message"] for e in body["errors"] if e["field"] == field]
    assert messages, f"no error for {field}: {body}"
    return messages[0]


class TestCreate:
    def test_returns_metadata_and_a_hint_never_the_secret(self, api: TestClient) -> None:
        body = credential_body(api_key="ABCDEFGHIJKLMNOPQRSTUVWX", api_secret="the-secret-never-returned")
        response = api.post("/admin/credentials", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["api_key_hint"] == "ABCD…UVWX"
        assert created["exchange"] == "binance" and created["key_type"] == "hmac"
        assert created["permissions"] == ["read", "trade"] and created["environment"] == "live"
        assert created["active_version"] == 1 and created["enabled"] is True
        assert [v["version"] for v in created["versions"]] == [1]
        assert not SECRET_FIELDS & set(created)
        assert "the-secret-never-returned" not in response.text
        assert "ABCDEFGHIJKLMNOPQRSTUVWX" not in response.text

    def test_pasted_whitespace_around_the_key_and_secret_is_trimmed(self, api: TestClient) -> None:
        created = post(api, api_key="  ABCDEFGHIJKLMNOP\n", api_secret="\tsecretvalue123 ").json()
        assert created["api_key_hint"] == "ABCD…MNOP"

    def test_short_key_hint_shows_little(self, api: TestClient) -> None:
        assert post(api, api_key="ABCDEFGH").json()["api_key_hint"] == "…GH"

    @pytest.mark.parametrize("api_key", ["ABCD EFGH", "ABCD\tEFGH", "ABCD\x00EFGH", "ABCD\x7fEFGH",
                                         "ABCD\u200bEFGH", "ABCD\u00a0EFGH", "ABCDÉFGH"])
    def test_key_with_whitespace_control_or_non_ascii_inside_is_refused(self, api: TestClient,
                                                                        api_key: str) -> None:
        message = field_error(post(api, api_key=api_key), "api_key")
        assert "whitespace, control or non-ASCII" in message

    @pytest.mark.parametrize("secret", ["abc def", "abc\u200bdef"])
    def test_hmac_secret_with_space_inside_is_refused(self, api: TestClient, secret: str) -> None:
        assert "whitespace" in field_error(post(api, api_secret=secret), "api_secret")

    def test_unknown_exchange_is_refused(self, api: TestClient) -> None:
        assert "unknown exchange" in field_error(post(api, exchange="mtgox"), "exchange")

    def test_kraken_needs_a_base64_secret(self, api: TestClient) -> None:
        assert "base64" in field_error(post(api, exchange="kraken", api_secret="not-base64!"), "api_secret")
        assert post(api, exchange="kraken", api_secret=b64(os.urandom(64))).status_code == 201

    def test_coinbase_exchange_needs_base64_secret_and_passphrase(self, api: TestClient) -> None:
        ok = {"exchange": "coinbaseexchange", "api_secret": b64(os.urandom(64)), "passphrase": "pass1234"}
        assert post(api, **ok).status_code == 201
        field_error(post(api, **{**ok, "passphrase": None}), "passphrase")
        field_error(post(api, **{**ok, "api_secret": "plain text"}), "api_secret")

    @pytest.mark.parametrize("exchange", ["okx", "kucoin", "kucoinfutures", "bitget", "coinbaseexchange"])
    def test_missing_passphrase_is_refused_where_required(self, api: TestClient, exchange: str) -> None:
        secret = b64(os.urandom(32))
        assert "passphrase" in field_error(post(api, exchange=exchange, api_secret=secret), "passphrase")
        assert "passphrase" in field_error(post(api, exchange=exchange, api_secret=secret, passphrase="   "),
                                           "passphrase")
        assert post(api, exchange=exchange, api_secret=secret, passphrase="Pa55 phrase!").status_code == 201

    @pytest.mark.parametrize("passphrase", ["caf\u00e9-pass", "pass\u5e01word"])
    def test_a_passphrase_beyond_ascii_is_refused(self, api: TestClient, passphrase: str) -> None:
        # It goes in a header: beyond ASCII it would fail every signed request, or sign other bytes.
        message = field_error(post(api, exchange="okx", api_secret=b64(os.urandom(32)), passphrase=passphrase),
                              "passphrase")
        assert "non-ASCII" in message and passphrase not in message

    def test_passphrase_where_none_exists_is_refused(self, api: TestClient) -> None:
        field_error(post(api, exchange="bybit", passphrase="surprise"), "passphrase")

    @pytest.mark.parametrize("exchange", ["binance", "bybit", "gate", "cryptocom", "binanceusdm"])
    def test_plain_hmac_exchanges_accept_a_key(self, api: TestClient, exchange: str) -> None:
        assert post(api, exchange=exchange).status_code == 201

    def test_binance_ed25519_and_rsa_keys(self, api: TestClient) -> None:
        assert post(api, key_type="ed25519", api_secret=ed25519_pem()).json()["key_type"] == "ed25519"
        assert post(api, key_type="rsa", api_secret=rsa_pem()).status_code == 201
        # A PEM pasted out of JSON keeps literal \n: it is repaired, not refused.
        assert post(api, key_type="ed25519", api_secret=ed25519_pem().replace("\n", "\\n")).status_code == 201

    @pytest.mark.parametrize(("key_type", "secret", "fragment"), [
        ("ed25519", "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----", "PEM"),
        ("ed25519", rsa_pem(), "not an Ed25519"),
        ("rsa", ed25519_pem(), "not an RSA"),
        ("rsa", rsa_pem(1024), "2048"),
        ("rsa", "plain-secret", "PEM"),
        ("ed25519", encrypted_pem(), "encrypted"),
    ])
    def test_unusable_asymmetric_keys_are_refused(self, api: TestClient, key_type: str, secret: str,
                                                  fragment: str) -> None:
        response = post(api, key_type=key_type, api_secret=secret)
        assert fragment in field_error(response, "api_secret")
        assert "garbage" not in response.text and "PRIVATE KEY" not in response.text

    def test_key_type_the_exchange_does_not_offer_is_refused(self, api: TestClient) -> None:
        field_error(post(api, exchange="kraken", key_type="rsa", api_secret=rsa_pem()), "key_type")
        field_error(post(api, key_type="dsa"), "key_type")

    def test_coinbase_cdp_keys(self, api: TestClient) -> None:
        name = "organizations/0000-org/apiKeys/1111-key"
        assert post(api, exchange="coinbase", api_key=name, api_secret=ec_pem()).json()["key_type"] == "ecdsa"
        assert post(api, exchange="coinbase", api_key=name, key_type="ed25519",
                    api_secret=b64(os.urandom(64))).status_code == 201
        field_error(post(api, exchange="coinbase", api_key=name, api_secret=ec_pem(ec.SECP384R1())),
                    "api_secret")
        field_error(post(api, exchange="coinbase", key_type="ed25519", api_secret=b64(b"x" * 10)), "api_secret")

    def test_environment_must_be_one_the_exchange_offers(self, api: TestClient) -> None:
        assert post(api, environment="testnet").json()["environment"] == "testnet"
        assert "live" in field_error(post(api, exchange="kraken", api_secret=b64(b"k" * 64),
                                          environment="testnet"), "environment")

    def test_labels_are_unique_per_exchange(self, api: TestClient) -> None:
        assert post(api, label="main").status_code == 201
        assert_problem(post(api, label="main"), 409, "label-taken")
        assert post(api, label="main", exchange="bybit").status_code == 201

    @pytest.mark.parametrize("label", ["", "has space", "a:b", "-lead", "x" * 65, "émoji"])
    def test_bad_labels_are_refused(self, api: TestClient, label: str) -> None:
        field_error(post(api, label=label), "label")

    def test_permissions_and_rate_limit(self, api: TestClient) -> None:
        created = post(api, permissions=["trade", "read", "read"], rate_limit="10/second;1200/minute").json()
        assert created["permissions"] == ["read", "trade"]
        assert created["rate_limit"] == "10/second;1200/minute"
        field_error(post(api, permissions=["read", "admin"]), "permissions.1")
        field_error(post(api, rate_limit="lots"), "rate_limit")

    def test_missing_fields_are_named_and_the_body_is_not_echoed(self, api: TestClient) -> None:
        response = api.post("/admin/credentials", headers=ADMIN,
                            json={"label": "x", "api_secret": "ECHO-CANARY-SECRET"})
        body = assert_problem(response, 422, "validation-error")
        assert {e["field"] for e in body["errors"]} == {"exchange", "api_key"}
        assert "ECHO-CANARY-SECRET" not in response.text and "input" not in response.text

    def test_invalid_values_are_not_echoed(self, api: TestClient) -> None:
        response = post(api, api_key="ECHO CANARY KEY", api_secret="ECHO-CANARY-SECRET" * 1000)
        assert_problem(response, 422)
        assert "ECHO" not in response.text

    def test_an_unknown_field_is_refused_with_ours_suggested(self, api: TestClient) -> None:
        response = post(api, apisecret="typo")
        assert field_error(response, "body").endswith("did you mean 'api_secret'?")
        assert "apisecret" not in response.text

    @pytest.mark.parametrize("pasted", ["NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
                                        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5",
                                        "bd7e4a3c-1f0e-4d5a-9c1b-7e2f3a4b5c6d", "cb9e1f2a4d5e6f708192a3b4c5d6e7f8",
                                        "correcthorse", "api_secretx"])
    def test_an_unknown_fields_name_is_never_repeated(self, api: TestClient, pasted: str) -> None:
        """A secret or passphrase pasted where a field's name goes: clients log the 422s they get."""
        response = post(api, **{pasted: "x"})
        assert "an unexpected field" in field_error(response, "body")
        assert pasted not in response.text

    @pytest.mark.parametrize("raw", [b"{not json", b"[1,2]", b"\xff\xfe", b""])
    def test_malformed_bodies_get_a_problem(self, api: TestClient, raw: bytes) -> None:
        response = api.post("/admin/credentials", content=raw,
                            headers={**ADMIN, "content-type": "application/json"})
        assert_problem(response, 422)


class TestAuth:
    def test_missing_and_wrong_tokens_get_401(self, api: TestClient) -> None:
        assert_problem(api.get("/admin/credentials"), 401, "not-authenticated")
        assert_problem(api.get("/admin/credentials", headers={"Authorization": "Bearer sva_wrong"}), 401)
        assert_problem(api.get("/admin/credentials", headers={"Authorization": "Basic eDp5"}), 401)

    def test_client_token_is_not_an_admin_token(self, api: TestClient) -> None:
        token = create_client(api)["token"]
        assert_problem(api.get("/admin/credentials", headers={"Authorization": f"Bearer {token}"}), 401)
        assert_problem(api.get("/admin/credentials", headers={"X-Signvault-Token": token}), 401)


class TestRead:
    def test_list_and_filter_by_exchange(self, api: TestClient) -> None:
        a = create_credential(api)
        b = create_credential(api, exchange="bybit")
        items = api.get("/admin/credentials", headers=ADMIN).json()["items"]
        assert {i["id"] for i in items} == {a["id"], b["id"]}
        only = api.get("/admin/credentials", params={"exchange": "bybit"}, headers=ADMIN).json()["items"]
        assert [i["id"] for i in only] == [b["id"]]

    def test_get_by_id_label_and_exchange_label(self, api: TestClient) -> None:
        created = create_credential(api, label="alpha")
        for ref in (created["id"], "alpha", "binance:alpha"):
            response = api.get(f"/admin/credentials/{ref}", headers=ADMIN)
            assert response.status_code == 200 and response.json()["id"] == created["id"]

    def test_label_on_two_exchanges_is_ambiguous(self, api: TestClient) -> None:
        create_credential(api, label="twin")
        create_credential(api, label="twin", exchange="bybit")
        assert_problem(api.get("/admin/credentials/twin", headers=ADMIN), 409)
        assert api.get("/admin/credentials/bybit:twin", headers=ADMIN).json()["exchange"] == "bybit"

    def test_unknown_credential_is_404(self, api: TestClient) -> None:
        assert_problem(api.get("/admin/credentials/nope", headers=ADMIN), 404, "credential-not-found")


class TestUpdate:
    def test_changes_metadata(self, api: TestClient) -> None:
        created = create_credential(api, rate_limit="5/second")
        response = api.patch(f"/admin/credentials/{created['id']}", headers=ADMIN,
                             json={"label": "renamed", "permissions": ["read"], "enabled": False})
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["label"], changed["permissions"], changed["enabled"]) == ("renamed", ["read"], False)
        assert changed["rate_limit"] == "5/second"  # untouched when absent
        cleared = api.patch("/admin/credentials/renamed", headers=ADMIN, json={"rate_limit": None}).json()
        assert cleared["rate_limit"] is None

    def test_label_clash_is_409(self, api: TestClient) -> None:
        create_credential(api, label="taken")
        other = create_credential(api)
        assert_problem(api.patch(f"/admin/credentials/{other['id']}", headers=ADMIN, json={"label": "taken"}),
                       409, "label-taken")

    def test_secrets_cannot_be_patched(self, api: TestClient) -> None:
        created = create_credential(api)
        response = api.patch(f"/admin/credentials/{created['id']}", headers=ADMIN,
                             json={"api_secret": "PATCH-CANARY"})
        field_error(response, "body")  # an unexpected field: secrets change only through rotate
        assert "PATCH-CANARY" not in response.text

    def test_unknown_credential_is_404(self, api: TestClient) -> None:
        assert_problem(api.patch("/admin/credentials/nope", headers=ADMIN, json={"enabled": False}), 404)


class TestRotate:
    def test_new_version_becomes_active_and_the_old_is_kept(self, api: TestClient) -> None:
        created = create_credential(api, label="rotating", api_key="OLDKEY0000000000")
        response = api.post("/admin/credentials/rotating/rotate?force=true", headers=ADMIN,
                            json={"api_key": " NEWKEY1111111111 ", "api_secret": "new-secret-value"})
        assert response.status_code == 200, response.text
        rotated = response.json()
        assert rotated["id"] == created["id"] and rotated["label"] == "rotating"
        assert rotated["active_version"] == 2 and rotated["api_key_hint"] == "NEWK…1111"
        assert [(v["version"], v["active"], v["api_key_hint"]) for v in rotated["versions"]] == [
            (1, False, "OLDK…0000"), (2, True, "NEWK…1111")]
        assert "new-secret-value" not in response.text

    def test_rotation_can_change_key_type(self, api: TestClient) -> None:
        created = create_credential(api)
        rotated = api.post(f"/admin/credentials/{created['id']}/rotate?force=true", headers=ADMIN,
                           json={"api_key": "EDKEY00000000000", "api_secret": ed25519_pem(),
                                 "key_type": "ed25519"}).json()
        assert rotated["key_type"] == "ed25519"
        assert [v["key_type"] for v in rotated["versions"]] == ["hmac", "ed25519"]

    def test_bad_new_key_leaves_the_old_version_active(self, api: TestClient) -> None:
        created = create_credential(api, exchange="kraken", api_secret=b64(os.urandom(64)))
        response = api.post(f"/admin/credentials/{created['id']}/rotate", headers=ADMIN,
                            json={"api_key": "NEWKEY1111111111", "api_secret": "not base64"})
        field_error(response, "api_secret")
        after = api.get(f"/admin/credentials/{created['id']}", headers=ADMIN).json()
        assert after["active_version"] == 1 and len(after["versions"]) == 1

    def test_expected_version_guards_against_a_stale_rotation(self, api: TestClient) -> None:
        created = create_credential(api)
        url = f"/admin/credentials/{created['id']}/rotate"
        body = {"api_key": "NEWKEY1111111111", "api_secret": "secret-two", "expected_version": 1}
        assert api.post(url, headers=ADMIN, json=body, params={"force": "true"}).status_code == 200
        assert_problem(api.post(url, headers=ADMIN, json=body, params={"force": "true"}), 409, "rotation-conflict")

    def test_two_concurrent_rotations_one_wins_one_gets_409(self, api: TestClient) -> None:
        created = create_credential(api)
        url = f"/admin/credentials/{created['id']}/rotate"

        def rotate(i: int) -> int:
            body = {"api_key": f"CONCURRENT{i:06d}", "api_secret": f"secret-{i}", "expected_version": 1}
            return api.post(url, headers=ADMIN, json=body, params={"force": "true"}).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(rotate, range(2)))
        assert statuses == [200, 409]
        after = api.get(url.removesuffix("/rotate"), headers=ADMIN).json()
        assert after["active_version"] == 2 and [v["version"] for v in after["versions"]] == [1, 2]

    def test_unknown_credential_is_404(self, api: TestClient) -> None:
        assert_problem(api.post("/admin/credentials/nope/rotate", headers=ADMIN,
                                json={"api_key": "ABCDEFGHIJKL", "api_secret": "x"}), 404)


class TestDelete:
    def test_delete_removes_credential_versions_and_grants(self, api: TestClient) -> None:
        created = create_credential(api)
        client = create_client(api, credentials=[created["id"]])
        assert api.delete(f"/admin/credentials/{created['id']}", headers=ADMIN).status_code == 204
        assert_problem(api.get(f"/admin/credentials/{created['id']}", headers=ADMIN), 404)
        assert_problem(api.delete(f"/admin/credentials/{created['id']}", headers=ADMIN), 404)
        me = api.get("/me", headers={"X-Signvault-Token": client["token"]}).json()
        assert me["credentials"] == []
        # The label is free again.
        assert post(api, label=created["label"]).status_code == 201
