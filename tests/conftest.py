"""Shared fixtures: the real app on SQLite and on PostgreSQL, admin and client helpers.

Service-backed tests follow ../shared/services.md: SIGNVAULT_TEST_DATABASE_URL points at PostgreSQL;
without it those tests skip, unless SIGNVAULT_TEST_REQUIRE_SERVICES=1 makes them fail.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import alembic  # noqa: F401 - loaded, each test's fresh database migrates in this process (app/migrate.py)
import asyncpg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.main import create_app
from app.settings import Settings
from tests.servers import ThreadedServer

T = TypeVar("T")

MASTER_KEY_A = base64.b64encode(b"A" * 32).decode()
MASTER_KEY_B = base64.b64encode(b"B" * 32).decode()
ADMIN_TOKEN = "sva_test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TABLES = ("admin_tokens, audit_events, client_credentials, clients, credential_versions, credentials, "
          "idempotency_keys, nonce_ceilings, vault_keys")

REQUIRE_SERVICES = os.environ.get("SIGNVAULT_TEST_REQUIRE_SERVICES") == "1"


def _service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (SIGNVAULT_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this run's own on the test PostgreSQL, migrated by the app and dropped after."""
    base = os.environ.get("SIGNVAULT_TEST_DATABASE_URL")
    if not base:
        _service_missing("SIGNVAULT_TEST_DATABASE_URL is not set")
    assert base is not None
    name = f"signvault_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        _service_missing(f"PostgreSQL at SIGNVAULT_TEST_DATABASE_URL is unreachable: {exc}")
    yield make_url(base).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> str:
    """The test Redis, with a key prefix of this test's own (see redis_prefix)."""
    url = os.environ.get("SIGNVAULT_TEST_REDIS_URL")
    if not url:
        _service_missing("SIGNVAULT_TEST_REDIS_URL is not set")
    assert url is not None
    return url


@pytest.fixture
def redis_prefix() -> str:
    return f"signvault-test:{uuid.uuid4().hex[:12]}:"


def _truncate(url: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            exists = await connection.fetchval("SELECT to_regclass('credentials') IS NOT NULL")
            if exists:
                await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
def database_url_postgres(postgres_url: str) -> str:
    """This run's PostgreSQL database, emptied, for a test that picks its backend itself."""
    _truncate(postgres_url)
    return postgres_url


def make_settings(data_dir: Any, database_url: str, **overrides: Any) -> Settings:
    """Settings pinned for tests: nothing leaks in from the developer's SIGNVAULT_* environment."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "master_key": None,
        "master_keys": SecretStr(MASTER_KEY_A),
        "master_key_file": None,
        "admin_token": SecretStr(ADMIN_TOKEN),
        "docs_enabled": True,
        "auto_migrate": True,
        "log_level": "DEBUG",
        "egress_echo_url": None,  # no test reaches out to a public IP-echo service
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Any, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def make_client() -> Iterator[Callable[[Settings], TestClient]]:
    """Start the real app (lifespan, migrations and all) for given settings; stopped at teardown."""
    started: list[TestClient] = []

    def start(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)


@pytest.fixture
def api(settings: Settings, make_client: Callable[[Settings], TestClient]) -> TestClient:
    return make_client(settings)


def stop(client: TestClient) -> None:
    """Stop an app started by make_client early (its teardown then does nothing more)."""
    client.__exit__(None, None, None)


def run_db(client: TestClient, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a transaction on the app's own engine and event loop."""

    async def call() -> T:
        state = client.app.state  # type: ignore[attr-defined]
        await state.audit_writer.flush()  # audit rows are written in batches; read them as /admin/audit does
        async with state.sessionmaker() as session, session.begin():
            return await work(session)

    assert client.portal is not None
    return client.portal.call(call)


# ---- data helpers -----------------------------------------------------------------------------

class SteppedClock:
    """`time` as a module sees it once patched in, moved by `by_s`: a clock stepped back (negative) or on."""

    def __init__(self, by_s: float) -> None:
        self.by_ns = int(by_s * 1e9)

    def time_ns(self) -> int:
        return time.time_ns() + self.by_ns


def random_secret(length: int = 48) -> str:
    return secrets.token_urlsafe(length)[:length]


def credential_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exchange": "binance",
        "label": f"bot-{uuid.uuid4().hex[:8]}",
        "api_key": "K" + random_secret(40),
        "api_secret": random_secret(64),
    }
    body.update(overrides)
    return body


def create_credential(api: TestClient, **overrides: Any) -> dict[str, Any]:
    response = api.post("/admin/credentials", json=credential_body(**overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_client(api: TestClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"bot-{uuid.uuid4().hex[:8]}", "permissions": ["read", "trade"]}
    body.update(overrides)
    response = api.post("/admin/clients", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == f"urn:signvault:problem:{slug}"
    return body


@pytest.fixture(scope="module")
def ip_echo() -> Iterator[str]:
    """Answers with the caller's address, like the public IP-echo services (which tests must not call)."""

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.client.host if request.client else "")

    with ThreadedServer(Starlette(routes=[Route("/", echo)]), name="ip-echo") as server:
        yield server.url + "/"


def early_in_an_order_interval(window_s: float = 10.0) -> None:
    """Wait, if need be, until just past the first second of one of Binance's 10 s order intervals:
    signvault uses no report on an order sent in an interval's first second (it may be of the one
    before), so a test that counts on reports runs after it, with the rest of the interval ahead."""
    into = time.time() % window_s
    if not 1.1 <= into <= 3.0:
        time.sleep((1.1 - into) % window_s)
