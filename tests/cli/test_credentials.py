"""`signvault credentials`: secrets only from stdin or a prompt, the API's checks, the app can use what is stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.credentials import repository, service
from app.vault.service import SecretMaterial
from tests.cli.conftest import Cli
from tests.conftest import ADMIN, random_secret, run_db
from tests.credentials.keys import ed25519_pem
from tests.simulator import SimulatorServer

OKX_PASSPHRASE = "okx-Passphrase-1"


def _key() -> str:
    return "K" + random_secret(40)


def _secret() -> str:
    return random_secret(64)


def _lines(*values: str) -> str:
    return "".join(value + "\n" for value in values)


def _stored(api: TestClient, ref: str) -> SecretMaterial:
    """The active version's secrets, opened by the app's own vault: what it would sign with."""

    async def work(session: Any) -> SecretMaterial:
        credential = await repository.find(session, ref)
        assert credential is not None
        return await service.open_active(session, api.app.state.vault, credential)  # type: ignore[attr-defined]

    return run_db(api, work)


def _items(cli: Cli) -> list[dict[str, Any]]:
    listed = cli("credentials", "list", "--json")
    assert listed.code == 0, listed.err
    items: list[dict[str, Any]] = json.loads(listed.out)["items"]
    return items


# ---- add ------------------------------------------------------------------------------------------

def test_add_from_stdin_stores_what_the_app_signs_with(cli: Cli, app_for: Callable[..., TestClient]) -> None:
    key, secret = _key(), _secret()
    argv = ["credentials", "add", "--exchange", "binance", "--label", "main", "--permissions", "read,trade",
            "--rate-limit", "10/second", "--stdin"]
    added = cli(*argv, stdin=_lines(key, secret))
    assert added.code == 0, added.err
    assert secret not in added.output and key not in added.output
    assert secret not in " ".join(argv) and key not in " ".join(argv)
    assert "stored credential binance:main" in added.out
    assert f"{key[:4]}…{key[-4:]}" in added.out  # the key hint

    api = app_for(cli)
    material = _stored(api, "binance:main")
    assert (material.api_key, material.api_secret, material.passphrase) == (key, secret, None)
    via_api = api.get("/admin/credentials/binance:main", headers=ADMIN).json()
    assert via_api["permissions"] == ["read", "trade"] and via_api["rate_limit"] == "10/second"

    audit = api.get("/admin/audit", params={"action": "create_credential"}, headers=ADMIN).json()["items"]
    assert audit and audit[0]["actor"].startswith("cli") and audit[0]["status"] == 201
    assert audit[0]["credential_label"] == "main" and audit[0]["method"] == "CLI"


def test_add_with_passphrase_and_json(sqlite_cli: Cli, app_for: Callable[..., TestClient]) -> None:
    key, secret = _key(), _secret()
    added = sqlite_cli("credentials", "add", "--exchange", "okx", "--label", "hedge", "--environment", "demo",
                       "--stdin", "--json", stdin=_lines(key, secret, OKX_PASSPHRASE))
    assert added.code == 0, added.err
    body = json.loads(added.out)
    assert (body["exchange"], body["label"], body["environment"], body["active_version"]) == ("okx", "hedge", "demo", 1)
    assert OKX_PASSPHRASE not in added.output and secret not in added.output
    assert _stored(app_for(sqlite_cli), "okx:hedge").passphrase == OKX_PASSPHRASE


BAD_INPUT = [
    pytest.param(["--exchange", "nowhere"], [_key(), _secret()], "exchange: unknown exchange; known: binance",
                 id="unknown-exchange"),
    pytest.param(["--exchange", "binance"], ["Kabc def0123456789", _secret()],
                 "api_key: contains whitespace, control or non-ASCII characters inside the key", id="space-in-key"),
    pytest.param(["--exchange", "okx"], [_key(), _secret()],
                 "passphrase: OKX keys need the passphrase set when the key was made", id="okx-without-passphrase"),
    pytest.param(["--exchange", "binance"], [_key(), _secret(), "a-passphrase"],
                 "passphrase: Binance keys have no passphrase", id="passphrase-where-none"),
    pytest.param(["--exchange", "binance", "--environment", "moon"], [_key(), _secret()],
                 "environment: Binance offers live, testnet, demo", id="unknown-environment"),
    pytest.param(["--exchange", "kraken"], [_key(), "not base64!"],
                 "api_secret: contains whitespace", id="bad-kraken-secret"),
    pytest.param(["--exchange", "binance", "--permissions", "read,fly"], [_key(), _secret()],
                 "permissions.1: Input should be 'read', 'trade' or 'withdraw'", id="unknown-permission"),
    pytest.param(["--exchange", "binance", "--rate-limit", "lots"], [_key(), _secret()],
                 "rate_limit: not a rate limit such as '10/second;1200/minute'", id="bad-rate-limit"),
    pytest.param(["--exchange", "binance", "--key-type", "rsa"], [_key(), _secret()],
                 "api_secret: a rsa key must be a PEM private key", id="rsa-without-pem"),
    pytest.param(["--exchange", "binance"], [_key()], "no secret on stdin", id="secret-missing"),
    pytest.param(["--exchange", "binance"], [], "nothing on stdin", id="stdin-empty"),
]


@pytest.mark.parametrize(("options", "lines", "message"), BAD_INPUT)
def test_bad_input_exits_2_with_the_apis_message_and_stores_nothing(
        cli: Cli, options: list[str], lines: list[str], message: str) -> None:
    result = cli("credentials", "add", "--label", "main", *options, "--stdin", stdin=_lines(*lines))
    assert result.code == 2, result.output
    assert result.err.startswith("signvault: error: ") and message in result.err
    assert result.err.count("\n") == 1, "one line, no traceback"
    assert result.out == ""
    for line in lines:
        assert line not in result.output
    assert _items(cli) == []


def test_the_label_is_checked_before_any_secret_is_asked_for(sqlite_cli: Cli) -> None:
    bad = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "no spaces", prompts=[])
    assert bad.code == 2 and "label: String should match pattern" in bad.err
    assert sqlite_cli.asked == []

    assert sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "main", "--stdin",
                      stdin=_lines(_key(), _secret())).code == 0
    taken = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "main", prompts=[])
    assert taken.code == 2 and "binance already has a credential labelled 'main'" in taken.err
    assert sqlite_cli.asked == []


def test_prompts_without_echo_in_a_terminal(sqlite_cli: Cli, app_for: Callable[..., TestClient]) -> None:
    key, secret = _key(), _secret()
    added = sqlite_cli("credentials", "add", "--exchange", "okx", "--label", "main",
                       prompts=[key, secret, OKX_PASSPHRASE])
    assert added.code == 0, added.err
    assert sqlite_cli.asked == ["OKX API key: ", "OKX API secret: ", "OKX API passphrase: "]
    assert secret not in added.output and OKX_PASSPHRASE not in added.output
    assert _stored(app_for(sqlite_cli), "okx:main").api_secret == secret

    # No passphrase question where the exchange has none.
    assert sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "main",
                      prompts=[_key(), _secret()]).code == 0
    assert sqlite_cli.asked == ["Binance API key: ", "Binance API secret: "]


def test_a_pem_key_pasted_at_the_prompt_or_piped(sqlite_cli: Cli, app_for: Callable[..., TestClient]) -> None:
    pem = ed25519_pem()
    prompted = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "ed", "--key-type", "ed25519",
                          prompts=[_key(), *pem.strip().split("\n")])
    assert prompted.code == 0, prompted.err
    assert sqlite_cli.asked[1] == "Binance private key: "

    piped_pem = ed25519_pem()
    piped = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "ed2", "--key-type", "ed25519",
                       "--stdin", stdin=_lines(_key()) + piped_pem)
    assert piped.code == 0, piped.err
    api = app_for(sqlite_cli)
    assert _stored(api, "binance:ed").api_secret == pem.strip()
    assert _stored(api, "binance:ed2").api_secret == piped_pem.strip()


def test_piped_input_needs_stdin_flag(sqlite_cli: Cli) -> None:
    result = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "main",
                        stdin=_lines(_key(), _secret()))
    assert result.code == 2 and "--stdin" in result.err and "not a terminal" in result.err


def test_interrupted_prompt_changes_nothing(sqlite_cli: Cli) -> None:
    result = sqlite_cli("credentials", "add", "--exchange", "binance", "--label", "main", prompts=[_key()])
    assert result.code == 2 and "end of input" in result.err
    assert _items(sqlite_cli) == []


# ---- list -----------------------------------------------------------------------------------------

def test_list_as_table_and_json(cli: Cli) -> None:
    empty = cli("credentials", "list")
    assert empty.code == 0 and "no credentials" in empty.out
    secrets = []
    for exchange, label in (("binance", "main"), ("bybit", "main"), ("binance", "spare")):
        secret = _secret()
        secrets.append(secret)
        assert cli("credentials", "add", "--exchange", exchange, "--label", label, "--stdin",
                   stdin=_lines(_key(), secret)).code == 0
    table = cli("credentials", "list")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split()[:3] == ["CREDENTIAL", "ID", "ENV"]
    assert [line.split()[0] for line in lines[1:]] == ["binance:main", "binance:spare", "bybit:main"]
    assert not any(secret in table.output for secret in secrets)

    only = _items(cli)
    assert len(only) == 3 and {"api_key_hint", "active_version"} <= set(only[0])
    bybit = json.loads(cli("credentials", "list", "--exchange", "bybit", "--json").out)["items"]
    assert [(c["exchange"], c["label"]) for c in bybit] == [("bybit", "main")]


# ---- rotate ---------------------------------------------------------------------------------------

def test_rotate_force_replaces_the_key(cli: Cli, app_for: Callable[..., TestClient]) -> None:
    assert cli("credentials", "add", "--exchange", "binance", "--label", "main", "--stdin",
               stdin=_lines(_key(), _secret())).code == 0
    new_key, new_secret = _key(), _secret()
    rotated = cli("credentials", "rotate", "binance:main", "--force", "--stdin", stdin=_lines(new_key, new_secret))
    assert rotated.code == 0, rotated.err
    assert "to version 2" in rotated.out and "not checked" in rotated.err
    assert new_secret not in rotated.output
    material = _stored(app_for(cli), "binance:main")
    assert (material.api_key, material.api_secret) == (new_key, new_secret)
    assert _items(cli)[0]["active_version"] == 2


def test_rotate_refuses_bad_input_and_unknown_refs(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    missing = cli("credentials", "rotate", "nothing", "--force", "--stdin", stdin=_lines(_key(), _secret()))
    assert missing.code == 2 and "no credential 'nothing'" in missing.err

    assert cli("credentials", "add", "--exchange", "okx", "--label", "main", "--stdin",
               stdin=_lines(_key(), _secret(), OKX_PASSPHRASE)).code == 0
    no_passphrase = cli("credentials", "rotate", "okx:main", "--force", "--stdin", stdin=_lines(_key(), _secret()))
    assert no_passphrase.code == 2 and "passphrase: OKX keys need the passphrase" in no_passphrase.err
    wrong_type = cli("credentials", "rotate", "okx:main", "--key-type", "rsa", prompts=[])
    assert wrong_type.code == 2 and "key_type: OKX supports hmac" in wrong_type.err and cli.asked == []
    assert _items(cli)[0]["active_version"] == 1


# ---- against an exchange (the signature-verifying simulator) --------------------------------------

@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def okx(simulator: SimulatorServer, sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI with OKX pointed at the simulator, and the key okx:main stored and known there."""
    simulator.config.reset()
    monkeypatch.setenv("SIGNVAULT_EXCHANGE_URLS", json.dumps({"okx": simulator.url_for("okx")}))
    key, secret = _key(), _secret()
    simulator.config.add_account("okx", key, secret, passphrase=OKX_PASSPHRASE)
    assert sqlite_cli("credentials", "add", "--exchange", "okx", "--label", "main", "--stdin",
                      stdin=_lines(key, secret, OKX_PASSPHRASE)).code == 0
    return sqlite_cli


def test_check_reports_in_the_exchanges_terms(okx: Cli, simulator: SimulatorServer) -> None:
    checked = okx("credentials", "check", "okx:main")
    assert checked.code == 0, checked.output
    assert checked.out.startswith("okx:main: connected")
    assert "trade yes" in checked.out and "withdraw no" in checked.out
    assert _items(okx)[0]["check"]["status"] == "connected"

    as_json = json.loads(okx("credentials", "check", "main", "--json").out)
    assert as_json["status"] == "connected" and as_json["permissions"]["trade"] is True

    simulator.config.reset()
    refused = okx("credentials", "check", "okx:main")
    assert refused.code == 1 and refused.out.startswith("okx:main: invalid_key")
    assert _items(okx)[0]["check"]["status"] == "invalid_key"


def test_rotate_checks_the_new_key_first(okx: Cli, simulator: SimulatorServer,
                                         app_for: Callable[..., TestClient]) -> None:
    new_key, new_secret = _key(), _secret()
    simulator.config.add_account("okx", new_key, "what-the-exchange-really-has", passphrase=OKX_PASSPHRASE)
    refused = okx("credentials", "rotate", "okx:main", "--stdin", stdin=_lines(new_key, new_secret, OKX_PASSPHRASE))
    assert refused.code == 2
    assert "invalid_signature" in refused.err and "The old key stays active" in refused.err
    assert new_secret not in refused.output
    assert _items(okx)[0]["active_version"] == 1

    simulator.config.add_account("okx", new_key, new_secret, passphrase=OKX_PASSPHRASE)
    rotated = okx("credentials", "rotate", "okx:main", "--stdin", stdin=_lines(new_key, new_secret, OKX_PASSPHRASE))
    assert rotated.code == 0, rotated.err
    assert "to version 2" in rotated.out
    assert ["check", "connected"] in [line.split() for line in rotated.out.splitlines()]
    assert _stored(app_for(okx), "okx:main").api_key == new_key


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_rotate_refuses_a_key_that_can_withdraw_when_configured(okx: Cli, simulator: SimulatorServer,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                force: list[str]) -> None:
    monkeypatch.setenv("SIGNVAULT_REFUSE_WITHDRAW_KEYS", "true")
    new_key, new_secret = _key(), _secret()
    simulator.config.add_account("okx", new_key, new_secret, passphrase=OKX_PASSPHRASE, can_withdraw=True)
    refused = okx("credentials", "rotate", "okx:main", *force, "--stdin",
                  stdin=_lines(new_key, new_secret, OKX_PASSPHRASE))
    assert refused.code == 2 and "can withdraw" in refused.err, refused.output
    assert _items(okx)[0]["active_version"] == 1
