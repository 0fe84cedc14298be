"""The commands' configuration: schema brought up to date (or a clear word), wrong keys and databases refused."""

from __future__ import annotations

import base64
import socket

import pytest

from tests.cli.conftest import Cli, Run
from tests.conftest import MASTER_KEY_B, random_secret

PIPED = f"K{random_secret(40)}\n{random_secret(64)}\n"


def _add(cli: Cli, label: str = "main") -> Run:
    return cli("credentials", "add", "--exchange", "binance", "--label", label, "--stdin", stdin=PIPED)


def test_a_new_database_is_migrated_first(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNVAULT_DATABASE_URL", f"sqlite+aiosqlite:///{sqlite_cli.data_dir / 'new.db'}")
    first = sqlite_cli("clients", "list")
    assert first.code == 0 and "applied the migrations" in first.err
    second = sqlite_cli("clients", "list")
    assert second.code == 0 and second.err == ""


def test_without_auto_migrate_it_says_to_run_migrate(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNVAULT_DATABASE_URL", f"sqlite+aiosqlite:///{sqlite_cli.data_dir / 'new.db'}")
    monkeypatch.setenv("SIGNVAULT_AUTO_MIGRATE", "false")
    refused = sqlite_cli("credentials", "list")
    assert refused.code == 1 and "run `signvault migrate` first" in refused.err and refused.err.count("\n") == 1
    migrated = sqlite_cli("migrate")
    assert migrated.code == 0 and "latest schema" in migrated.out
    assert sqlite_cli("credentials", "list").code == 0


def test_a_wrong_master_key_says_so_and_stores_nothing(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _add(sqlite_cli).code == 0
    monkeypatch.setenv("SIGNVAULT_MASTER_KEY", MASTER_KEY_B)
    wrong = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "other", "--stdin", stdin=PIPED)
    assert wrong.code == 1
    assert wrong.err.startswith("signvault: error: wrong master key: stored credentials are sealed under mk_")
    assert "SIGNVAULT_MASTER_KEY holds" in wrong.err and wrong.err.count("\n") == 1
    assert sqlite_cli("credentials", "check", "main").code == 1

    monkeypatch.setenv("SIGNVAULT_MASTER_KEY", "not-a-key")
    broken = _add(sqlite_cli, "third")
    assert broken.code == 1
    assert "no usable master key: SIGNVAULT_MASTER_KEY: not valid base64" in broken.err
    assert "not-a-key" not in broken.err

    listed = sqlite_cli("credentials", "list")  # listing needs no key
    assert listed.code == 0 and "binance:main" in listed.out and "binance:other" not in listed.out


def test_an_external_database_needs_an_explicit_master_key(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch,
                                                           database_url_postgres: str) -> None:
    monkeypatch.setenv("SIGNVAULT_DATABASE_URL", database_url_postgres)
    monkeypatch.delenv("SIGNVAULT_MASTER_KEY")
    result = _add(sqlite_cli)
    assert result.code == 1
    assert "an external database needs SIGNVAULT_MASTER_KEY" in result.err
    assert not (sqlite_cli.data_dir / "signvault.master.key").exists()


def test_a_development_key_is_generated_on_sqlite_and_reused(sqlite_cli: Cli,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNVAULT_MASTER_KEY")
    first = _add(sqlite_cli)
    assert first.code == 0 and "DEVELOPMENT SETUP" in first.err
    key_file = sqlite_cli.data_dir / "signvault.master.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert base64.b64decode(key_file.read_text().strip()) and key_file.read_text().strip() not in first.err
    second = _add(sqlite_cli, "second")
    assert second.code == 0 and "DEVELOPMENT SETUP" not in second.err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_database_is_one_line_without_the_password(sqlite_cli: Cli,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql+asyncpg://signvault:pa55word@127.0.0.1:{_closed_port()}/signvault"
    monkeypatch.setenv("SIGNVAULT_DATABASE_URL", url)
    result = sqlite_cli("clients", "list")
    assert result.code == 1
    assert result.err.startswith("signvault: error: cannot open the database postgresql+asyncpg://signvault:***@")
    assert "pa55word" not in result.err and result.err.count("\n") == 1


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SIGNVAULT_DATABASE_URL", "not a url", "SIGNVAULT_DATABASE_URL is not a usable database URL"),
    ("SIGNVAULT_DATABASE_URL", "postgresql://db/signvault", "driver that is not installed"),
    ("SIGNVAULT_PORT", "eighty", "bad configuration: SIGNVAULT_PORT:"),
    ("SIGNVAULT_EXCHANGE_URLS", "{not json", 'bad configuration: error parsing value for field "exchange_urls"'),
    ("SIGNVAULT_EGRESS_SOURCE_IP", "10.0.0.1",
     "bad configuration: set SIGNVAULT_EGRESS_PROXY or SIGNVAULT_EGRESS_SOURCE_IP, not both"),
])
def test_bad_configuration_is_one_line(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                       message: str) -> None:
    monkeypatch.setenv("SIGNVAULT_EGRESS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv(name, value)
    result = sqlite_cli("admin-token", "list")
    assert result.code == 1 and message in result.err and result.err.count("\n") == 1


def test_several_workers_need_the_shared_store(sqlite_cli: Cli) -> None:
    """Without Redis each worker process would spend every rate limit in full and repeat Kraken nonces."""
    result = sqlite_cli("serve", "--workers", "2")
    assert result.code == 1 and "SIGNVAULT_REDIS_URL" in result.err and result.err.count("\n") == 1
    assert sqlite_cli("serve", "--workers", "0").code == 2
