"""Driving `signvault ...` in-process: configuration from SIGNVAULT_* as in production, stdin and
prompts replaced, stdout and stderr captured; the real app started on the same database."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.cli import main
from app.settings import Settings
from tests.conftest import MASTER_KEY_A, make_settings


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


class Terminal(io.StringIO):
    """A stdin that says it is a terminal (what the prompts need) and has nothing to read."""

    def isatty(self) -> bool:
        return True


@dataclass
class Cli:
    """`cli("credentials", "list")` runs `signvault credentials list` against this test's database."""

    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    data_dir: Path
    database_url: str
    asked: list[str] = field(default_factory=list)  # the prompts shown, in order

    def __call__(self, *argv: str, stdin: str | None = None, prompts: list[str] | None = None) -> Run:
        if prompts is not None:
            answers = iter(prompts)
            self.asked.clear()

            def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
                self.asked.append(prompt)
                try:
                    return next(answers)
                except StopIteration:
                    raise EOFError from None

            self.monkeypatch.setattr("getpass.getpass", fake_getpass)
            self.monkeypatch.setattr(sys, "stdin", Terminal())
        else:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        self.capsys.readouterr()  # drop what the app printed meanwhile
        # A process of its own would start without the app's log handler (app.observability.logs).
        root = logging.getLogger()
        app_handlers = [h for h in root.handlers if _is_app_handler(h)]
        for handler in app_handlers:
            root.removeHandler(handler)
        try:
            code = main(list(argv))
        finally:
            for handler in app_handlers:
                root.addHandler(handler)
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def settings(self, **overrides: Any) -> Settings:
        """Settings for the app that match this environment, plus the tests' ADMIN token."""
        values: dict[str, Any] = {"master_keys": None, "master_key": SecretStr(MASTER_KEY_A), "egress_echo_url": ""}
        values.update(overrides)
        return make_settings(self.data_dir, self.database_url, **values)


def _is_app_handler(handler: logging.Handler) -> bool:
    return bool(getattr(handler, "_signvault", False))


def clean_signvault_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's SIGNVAULT_* configuration (the test services' URLs stay)."""
    for name in list(os.environ):
        if name.startswith("SIGNVAULT_") and not name.startswith("SIGNVAULT_TEST_"):
            monkeypatch.delenv(name)


def _migrated(cli: Cli) -> Cli:
    """An existing deployment's database, so outputs do not start with the first start's migration note."""
    migrated = cli("migrate")
    assert migrated.code == 0, migrated.err
    return cli


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        database_url: str) -> Cli:
    """The CLI's configuration, as an operator would set it, on SQLite and on PostgreSQL."""
    return _configured(monkeypatch, capsys, tmp_path, database_url)


@pytest.fixture
def sqlite_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    """The same on SQLite only, for what the storage backend does not change."""
    return _configured(monkeypatch, capsys, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'signvault.db'}")


def _configured(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                 database_url: str) -> Cli:
    clean_signvault_env(monkeypatch)
    monkeypatch.setenv("SIGNVAULT_DATABASE_URL", database_url)
    monkeypatch.setenv("SIGNVAULT_MASTER_KEY", MASTER_KEY_A)
    monkeypatch.setenv("SIGNVAULT_DATA_DIR", str(tmp_path))
    return _migrated(Cli(monkeypatch, capsys, tmp_path, database_url))


@pytest.fixture
def app_for(make_client: Callable[[Settings], TestClient]) -> Callable[..., TestClient]:
    """The real app on the CLI's database: `app_for(cli)`."""

    def start(cli: Cli, **overrides: Any) -> TestClient:
        return make_client(cli.settings(**overrides))

    return start
