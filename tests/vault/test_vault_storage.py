"""The vault against a real database: tampered rows, rewrap interrupted and resumed, wrong keys."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials import service as credentials
from app.credentials.models import CredentialVersion
from app.settings import Settings
from app.vault.keyring import load_keyring, parse_key
from app.vault.rewrap import rewrap_all
from app.vault.service import SecretMaterial, VaultCorrupt
from tests.conftest import (
    ADMIN,
    MASTER_KEY_A,
    MASTER_KEY_B,
    assert_problem,
    create_credential,
    make_settings,
    run_db,
    stop,
)

KEY_A_ID = parse_key(MASTER_KEY_A, "a").id
KEY_B_ID = parse_key(MASTER_KEY_B, "b").id


def open_credential(api: TestClient, ref: str) -> SecretMaterial:
    async def work(session: AsyncSession) -> SecretMaterial:
        credential = await credentials.get(session, ref)
        return await credentials.open_active(session, api.app.state.vault, credential)  # type: ignore[attr-defined]

    return run_db(api, work)


def version_row(api: TestClient, credential_id: str, version: int = 1) -> CredentialVersion:
    async def work(session: AsyncSession) -> CredentialVersion:
        row = await session.get(CredentialVersion, (credential_id, version))
        assert row is not None
        return row

    return run_db(api, work)


def write_row(api: TestClient, credential_id: str, **values: Any) -> None:
    async def work(session: AsyncSession) -> None:
        await session.execute(update(CredentialVersion)
                              .where(CredentialVersion.credential_id == credential_id).values(**values))

    run_db(api, work)


def flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x80]) + blob[index + 1:]


class TestTamperedRows:
    def test_stored_secret_opens_back(self, api: TestClient) -> None:
        created = create_credential(api, api_secret="round-trip-secret-123", api_key="ROUNDTRIPKEY1234")
        material = open_credential(api, created["id"])
        assert (material.api_key, material.api_secret) == ("ROUNDTRIPKEY1234", "round-trip-secret-123")
        assert "round-trip" not in repr(material)

    @pytest.mark.parametrize("column", ["ciphertext", "wrapped_key"])
    @pytest.mark.parametrize("index", [0, 20, -1])  # nonce, body, tag
    def test_flipped_byte_fails_closed_and_is_logged(self, api: TestClient, column: str, index: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
        created = create_credential(api)
        row = version_row(api, created["id"])
        write_row(api, created["id"], **{column: flip(getattr(row, column), index)})
        with caplog.at_level(logging.ERROR, logger="signvault"), pytest.raises(VaultCorrupt):
            open_credential(api, created["id"])
        assert any("integrity failure" in r.getMessage() and created["id"] in r.getMessage()
                   for r in caplog.records)

    def test_ciphertext_copied_from_another_credential_is_refused(self, api: TestClient) -> None:
        a = create_credential(api)
        b = create_credential(api)
        row_a = version_row(api, a["id"])
        write_row(api, b["id"], ciphertext=row_a.ciphertext)
        with pytest.raises(VaultCorrupt):
            open_credential(api, b["id"])
        write_row(api, b["id"], ciphertext=row_a.ciphertext, wrapped_key=row_a.wrapped_key)
        with pytest.raises(VaultCorrupt):
            open_credential(api, b["id"])
        assert open_credential(api, a["id"]).api_key  # the source row is unharmed


class Interrupted(Exception):
    pass


class TestRewrap:
    def test_interrupted_rewrap_resumes_and_loses_nothing(
        self, tmp_path: Path, database_url: str, make_client: Callable[[Settings], TestClient],
    ) -> None:
        old = make_client(make_settings(tmp_path, database_url, master_keys=SecretStr(MASTER_KEY_A)))
        made = [create_credential(old, api_secret=f"secret-number-{i}-abcdef") for i in range(7)]
        rotated = made[0]["id"]
        response = old.post(f"/admin/credentials/{rotated}/rotate?force=true", headers=ADMIN,
                            json={"api_key": "ROTATEDKEY123456", "api_secret": "secret-rotated-abcdef"})
        assert response.status_code == 200, response.text
        before = {c["id"]: open_credential(old, c["id"]) for c in made}
        stop(old)

        both = make_settings(tmp_path, database_url, master_keys=SecretStr(f"{MASTER_KEY_B},{MASTER_KEY_A}"))
        api = make_client(both)
        ring = load_keyring(both)
        sessionmaker = api.app.state.sessionmaker  # type: ignore[attr-defined]

        def crash_at_fifth(done: int) -> None:
            if done == 5:
                raise Interrupted

        assert api.portal is not None
        with pytest.raises(Interrupted):
            api.portal.call(lambda: rewrap_all(sessionmaker, ring, batch_size=3, after_row=crash_at_fifth))
        counts = self._counts(api)
        assert counts == {KEY_B_ID: 3, KEY_A_ID: 5}  # first batch committed, second rolled back whole

        report = api.portal.call(lambda: rewrap_all(sessionmaker, ring, batch_size=3))
        assert (report.rewrapped, report.remaining) == (5, 0)
        assert self._counts(api) == {KEY_B_ID: 8}
        assert {c["id"]: open_credential(api, c["id"]) for c in made} == before
        assert api.portal.call(lambda: rewrap_all(sessionmaker, ring)).rewrapped == 0
        stop(api)

        # The old key can now be dropped: the new one alone opens every row.
        only_new = make_client(make_settings(tmp_path, database_url, master_keys=SecretStr(MASTER_KEY_B)))
        assert only_new.get("/readyz").status_code == 200
        assert {c["id"]: open_credential(only_new, c["id"]) for c in made} == before

    @staticmethod
    def _counts(api: TestClient) -> dict[str, int]:
        async def work(session: AsyncSession) -> dict[str, int]:
            rows = (await session.execute(select(CredentialVersion.master_key_id))).scalars().all()
            counts: dict[str, int] = {}
            for key_id in rows:
                counts[key_id] = counts.get(key_id, 0) + 1
            return counts

        return run_db(api, work)


class TestFailsClosed:
    def test_wrong_master_key_refuses_to_store_or_open(
        self, tmp_path: Path, database_url: str, make_client: Callable[[Settings], TestClient],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        first = make_client(make_settings(tmp_path, database_url, master_keys=SecretStr(MASTER_KEY_A)))
        created = create_credential(first)
        stop(first)

        with caplog.at_level(logging.DEBUG):
            wrong = make_client(make_settings(tmp_path, database_url, master_keys=SecretStr(MASTER_KEY_B)))
        ready = assert_problem(wrong.get("/readyz"), 503, "not-ready")
        assert KEY_A_ID in ready["detail"]
        assert_problem(wrong.post("/admin/credentials", json={
            "exchange": "binance", "label": "x", "api_key": "ABCDEFGHIJKL", "api_secret": "s3cretvalue"},
            headers=ADMIN), 503, "vault-unavailable")
        with pytest.raises(Exception, match="master key"):
            open_credential(wrong, created["id"])
        assert any(KEY_A_ID in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
        assert MASTER_KEY_B not in caplog.text and MASTER_KEY_A not in caplog.text

    @pytest.mark.parametrize("override", [
        {"master_keys": None, "master_key_file": Path("/nonexistent/signvault.key")},
        {"master_keys": SecretStr("dG9vLXNob3J0")},  # base64 of "too-short"
        {"master_keys": SecretStr("!!not base64!!")},
    ])
    def test_missing_or_malformed_key_is_unready_and_refuses(
        self, tmp_path: Path, database_url: str, make_client: Callable[[Settings], TestClient],
        override: dict[str, Any], caplog: pytest.LogCaptureFixture,
    ) -> None:
        with caplog.at_level(logging.DEBUG):
            api = make_client(make_settings(tmp_path, database_url, **override))
        assert api.get("/healthz").status_code == 200
        assert_problem(api.get("/readyz"), 503, "not-ready")
        body = assert_problem(api.post("/admin/credentials", json={
            "exchange": "binance", "label": "x", "api_key": "ABCDEFGHIJKL", "api_secret": "s3cretvalue"},
            headers=ADMIN), 503, "vault-unavailable")
        assert "SIGNVAULT_MASTER_KEY" in body["detail"]
        assert "vault disabled" in caplog.text
        assert "dG9vLXNob3J0" not in caplog.text and "not base64!!" not in caplog.text
