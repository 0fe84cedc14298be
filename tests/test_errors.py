"""Every failure is problem+json; database errors and disabled docs leak nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import Settings
from tests.conftest import ADMIN, assert_problem, credential_body, make_settings, run_db

CANARY = "DbErrorCanarySecret0123456789"


class TestProblemJson:
    def test_unknown_route_and_method(self, api: TestClient) -> None:
        assert_problem(api.get("/nowhere"), 404, "not-found")
        assert_problem(api.put("/healthz"), 405, "method-not-allowed")


class TestDatabaseErrors:
    @pytest.fixture
    def broken_version_inserts(self, api: TestClient, database_url: str) -> Iterator[None]:
        """A trigger that fails every credential_versions INSERT; dropped again afterwards."""
        if database_url.startswith("sqlite"):
            create = ["CREATE TRIGGER refuse BEFORE INSERT ON credential_versions "
                      "BEGIN SELECT RAISE(ABORT, 'forced failure'); END"]
            drop = ["DROP TRIGGER refuse"]
        else:
            create = [
                "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'forced failure'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse BEFORE INSERT ON credential_versions FOR EACH ROW EXECUTE FUNCTION refuse()",
            ]
            drop = ["DROP TRIGGER refuse ON credential_versions", "DROP FUNCTION refuse()"]

        def execute(statements: list[str]) -> None:
            async def work(session: AsyncSession) -> None:
                for statement in statements:
                    await session.execute(text(statement))

            run_db(api, work)

        execute(create)
        yield
        execute(drop)

    @pytest.mark.usefixtures("broken_version_inserts")
    def test_failed_write_is_a_generic_500_with_no_parameters_logged(
        self, api: TestClient, caplog: pytest.LogCaptureFixture,
    ) -> None:
        body = credential_body(api_secret=CANARY, api_key="DbErrorCanaryKey00")
        with caplog.at_level(logging.DEBUG):
            response = api.post("/admin/credentials", json=body, headers=ADMIN)
        problem = assert_problem(response, 500, "internal-error")
        assert "forced" not in response.text and "Traceback" not in response.text
        assert "forced failure" in caplog.text  # the cause is logged for operators...
        assert "[SQL parameters hidden" in caplog.text or "parameters hidden" in caplog.text
        for fragment in (CANARY, "DbErrorCanaryKey00", body["label"]):  # ...but no bound value
            assert fragment not in caplog.text
        assert "detail" not in problem
        # Nothing half-written: the credential row was rolled back with its version.
        assert api.get("/admin/credentials", headers=ADMIN).json()["items"] == []


class TestProductionConfig:
    def test_docs_and_spec_can_be_turned_off(
        self, tmp_path: Path, database_url: str, make_client: Callable[[Settings], TestClient],
    ) -> None:
        api = make_client(make_settings(tmp_path, database_url, docs_enabled=False))
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert_problem(api.get(path), 404)
        assert api.get("/healthz").status_code == 200

    def test_docs_are_on_by_default_for_development(self, api: TestClient) -> None:
        assert api.get("/openapi.json").status_code == 200
