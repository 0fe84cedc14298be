"""`signvault clients`: a bot's token is printed once, works on /me, and stops working when revoked."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.cli.conftest import Cli
from tests.conftest import assert_problem, random_secret


def _add_credential(cli: Cli, exchange: str, label: str) -> None:
    added = cli("credentials", "add", "--exchange", exchange, "--label", label, "--stdin",
                stdin=f"K{random_secret(40)}\n{random_secret(64)}\n")
    assert added.code == 0, added.err


def test_add_list_revoke(cli: Cli, app_for: Callable[..., TestClient]) -> None:
    _add_credential(cli, "binance", "main")
    _add_credential(cli, "bybit", "main")
    added = cli("clients", "add", "--name", "grid-bot", "--credentials", "binance:main,bybit:main",
                "--permissions", "read,trade", "--rate-limit", "20/second")
    assert added.code == 0, added.err
    token = added.out.strip()
    assert added.out == token + "\n" and token.startswith("sv_")
    assert token not in added.err and "shown only this once" in added.err
    assert "binance:main,bybit:main" in added.err

    api = app_for(cli)
    me = api.get("/me", headers={"X-Signvault-Token": token})
    assert me.status_code == 200, me.text
    assert me.json()["permissions"] == ["read", "trade"]
    assert sorted(f"{c['exchange']}:{c['label']}" for c in me.json()["credentials"]) == ["binance:main", "bybit:main"]

    listed = cli("clients", "list")
    assert listed.code == 0 and token not in listed.output
    row = listed.out.splitlines()[1].split()
    assert row[0] == "grid-bot" and row[2:5] == ["read,trade", "binance:main,bybit:main", "20/second"]
    assert row[-1] == "-"  # not revoked

    revoked = cli("clients", "revoke", "grid-bot")
    assert revoked.code == 0 and "revoked client 'grid-bot'" in revoked.out
    assert_problem(api.get("/me", headers={"X-Signvault-Token": token}), 401)

    items = json.loads(cli("clients", "list", "--json").out)["items"]
    assert [(i["name"], i["active"]) for i in items] == [("grid-bot", False)]
    assert "token" not in items[0]
    assert "already revoked" in cli("clients", "revoke", "grid-bot").out


def test_rotate_token(sqlite_cli: Cli, app_for: Callable[..., TestClient]) -> None:
    old = sqlite_cli("clients", "add", "--name", "bot").out.strip()
    new = sqlite_cli("clients", "rotate-token", "bot")
    assert new.code == 0 and new.out.strip().startswith("sv_") and new.out.strip() != old
    api = app_for(sqlite_cli)
    assert api.get("/me", headers={"X-Signvault-Token": new.out.strip()}).status_code == 200
    assert_problem(api.get("/me", headers={"X-Signvault-Token": old}), 401)


def test_refusals_exit_2_and_create_nothing(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    _add_credential(cli, "binance", "main")
    unknown = cli("clients", "add", "--name", "bot", "--credentials", "binance:main,okx:nope")
    assert unknown.code == 2 and unknown.out == ""
    assert unknown.err == "signvault: error: no such credential: okx:nope (`signvault credentials list` shows them)\n"

    bad_permission = cli("clients", "add", "--name", "bot", "--permissions", "read,admin")
    assert bad_permission.code == 2
    assert "permissions.1: Input should be 'read', 'trade' or 'withdraw'" in bad_permission.err

    bad_name = cli("clients", "add", "--name", "two words")
    assert bad_name.code == 2 and bad_name.err.startswith("signvault: error: name:")
    assert json.loads(cli("clients", "list", "--json").out)["items"] == []

    assert cli("clients", "add", "--name", "bot").code == 0
    taken = cli("clients", "add", "--name", "bot")
    assert taken.code == 2 and "a client named 'bot' exists" in taken.err and taken.out == ""

    missing = cli("clients", "revoke", "nobody")
    assert missing.code == 2 and "no client 'nobody'" in missing.err


def test_json_add_has_the_token_once(sqlite_cli: Cli) -> None:
    added = sqlite_cli("clients", "add", "--name", "bot", "--json")
    body = json.loads(added.out)
    assert body["token"].startswith("sv_") and added.out.count(body["token"]) == 1 and body["permissions"] == ["read"]


def test_a_revoke_reaches_a_running_servers_cache_at_once(
    cli: Cli, app_for: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_prefix: str,
) -> None:
    """/sign and /proxy authenticate from a cache; a CLI write announces itself over Redis as an API write does."""
    monkeypatch.setenv("SIGNVAULT_REDIS_URL", redis_url)
    monkeypatch.setenv("SIGNVAULT_REDIS_PREFIX", redis_prefix)
    _add_credential(cli, "cryptocom", "cdc")  # no server-time endpoint: /sign needs no network
    token = cli("clients", "add", "--name", "cached-bot", "--credentials", "cryptocom:cdc",
                "--permissions", "read,trade").out.strip()
    api = app_for(cli, redis_url=redis_url, redis_prefix=redis_prefix)
    sign = {"credential": "cdc", "method": "POST", "path": "/exchange/v1/private/user-balance",
            "body": '{"id":1,"method":"private/user-balance","params":{}}', "content_type": "application/json"}
    assert api.post("/sign", json=sign, headers={"X-Signvault-Token": token}).status_code == 200  # now cached

    assert cli("clients", "revoke", "cached-bot").code == 0
    deadline = time.monotonic() + 1.0
    while api.post("/sign", json=sign, headers={"X-Signvault-Token": token}).status_code != 401:
        assert time.monotonic() < deadline, "the revoked token still worked a second later"
        time.sleep(0.05)
