"""No secret in any response, log line, or stored byte: canaries driven through the admin API."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import ADMIN, TABLES, run_db

CANARY_SECRET = "CanarySecret7f3a9c0e1b2d4f6a8c"
CANARY_KEY = "CanaryApiKey5e1d9b7c3a0f2e4d6b"
CANARY_PASSPHRASE = "CanaryPass9d8c7b6a"
CANARY_KRAKEN = b"kraken-canary-secret-bytes-0123456789"


def forms(value: str | bytes) -> set[str]:
    """The value and the encodings a careless store or log would show it in."""
    raw = value.encode() if isinstance(value, str) else value
    shown = {base64.b64encode(raw).decode().rstrip("="), raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    if isinstance(value, str):
        shown.add(value)
    return shown


ALL_FORMS = set().union(*(forms(v) for v in (CANARY_SECRET, CANARY_KEY, CANARY_PASSPHRASE, CANARY_KRAKEN,
                                             "RotatedCanarySecret1234", "RotatedCanaryKey5678")))


def leaks(haystack: str) -> list[str]:
    lowered = haystack.lower()
    return sorted(f for f in ALL_FORMS if f.lower() in lowered)


def exercise(api: TestClient) -> tuple[list[str], list[str]]:
    """Every admin route with canary secrets; returns response texts and the tokens handed out."""
    seen: list[str] = []

    def call(method: str, url: str, **kwargs: Any) -> Any:
        response = api.request(method, url, headers=ADMIN, **kwargs)
        seen.append(response.text + str(dict(response.headers)))
        return response

    binance = call("POST", "/admin/credentials", json={
        "exchange": "binance", "label": "canary", "api_key": CANARY_KEY, "api_secret": CANARY_SECRET}).json()
    call("POST", "/admin/credentials", json={
        "exchange": "okx", "label": "canary", "api_key": CANARY_KEY, "api_secret": CANARY_SECRET,
        "passphrase": CANARY_PASSPHRASE})
    call("POST", "/admin/credentials", json={
        "exchange": "kraken", "label": "canary", "api_key": CANARY_KEY,
        "api_secret": base64.b64encode(CANARY_KRAKEN).decode()})
    # Refusals must not echo either.
    call("POST", "/admin/credentials", json={
        "exchange": "binance", "label": "canary", "api_key": CANARY_KEY, "api_secret": CANARY_SECRET})
    call("POST", "/admin/credentials", json={"exchange": "nope", "label": "x", "api_key": CANARY_KEY + " x",
                                             "api_secret": CANARY_SECRET, "passphrase": CANARY_PASSPHRASE})
    call("POST", "/admin/credentials", json={"api_secret": CANARY_SECRET, "passphrase": CANARY_PASSPHRASE})
    call("PATCH", f"/admin/credentials/{binance['id']}", json={"api_secret": CANARY_SECRET})
    call("POST", f"/admin/credentials/{binance['id']}/rotate?force=true",
         json={"api_key": "RotatedCanaryKey5678", "api_secret": "RotatedCanarySecret1234"})
    call("GET", "/admin/credentials")
    call("GET", f"/admin/credentials/{binance['id']}")
    client = call("POST", "/admin/clients", json={"name": "canary-bot", "credentials": [binance["id"]]}).json()
    rotated = call("POST", "/admin/clients/canary-bot/rotate-token").json()
    call("GET", "/admin/clients")
    call("GET", "/admin/audit", params={"limit": 500})
    seen.append(api.get("/me", headers={"X-Signvault-Token": rotated["token"]}).text)
    return seen, [client["token"], rotated["token"]]


def test_no_secret_in_responses_logs_or_the_sqlite_file(
    api: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, database_url: str,
) -> None:
    with caplog.at_level(logging.DEBUG):
        responses, tokens = exercise(api)

    assert leaks("\n".join(responses)) == []
    assert leaks(caplog.text) == []
    for token in tokens:
        assert token not in caplog.text

    stored = stored_text(api, tmp_path, database_url)
    assert "canary-bot" in stored and "Cana" in stored  # the search really sees the rows (and key hints)
    assert leaks(stored) == []
    for token in [*tokens, ADMIN["Authorization"].removeprefix("Bearer ")]:
        assert token not in stored


def stored_text(api: TestClient, tmp_path: Path, database_url: str) -> str:
    if database_url.startswith("sqlite"):
        files = sorted(tmp_path.glob("signvault.db*"))
        assert files, "the SQLite file was not where the test expects it"
        # latin-1 maps every byte to one character, so byte strings survive for searching.
        return "\n".join(f.read_bytes().decode("latin-1") for f in files)

    async def dump(session: AsyncSession) -> str:
        rows = []
        for table in TABLES.split(", "):
            result = await session.execute(text(f"SELECT row_to_json(t)::text FROM {table} t"))
            rows.extend(result.scalars().all())
        return "\n".join(rows)

    return run_db(api, dump)
