"""`signvault admin-token`: a token made on the command line works against the service until revoked."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.models import AdminToken
from app.tokens import hash_token
from tests.cli.conftest import Cli
from tests.conftest import assert_problem, run_db


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_use_revoke(cli: Cli, app_for: Callable[..., TestClient]) -> None:
    created = cli("admin-token", "create", "--name", "alice")
    assert created.code == 0, created.err
    token = created.out.strip()
    assert created.out == token + "\n", "stdout is the token alone, for scripts"
    assert token.startswith("sva_") and len(token) > 40
    assert "shown only this once" in created.err and token not in created.err

    api = app_for(cli)
    assert api.get("/admin/credentials", headers=_bearer(token)).status_code == 200

    rows = run_db(api, _all_tokens)
    assert [(r.name, r.token_hash) for r in rows] == [("alice", hash_token(token))]

    listed = cli("admin-token", "list")
    assert listed.code == 0
    assert "alice" in listed.out and token not in listed.output and hash_token(token) not in listed.output

    revoked = cli("admin-token", "revoke", "alice")
    assert revoked.code == 0, revoked.err
    assert "revoked admin token 'alice'" in revoked.out
    assert "no active admin token is left" in revoked.err
    assert_problem(api.get("/admin/credentials", headers=_bearer(token)), 401)

    again = cli("admin-token", "revoke", rows[0].id)
    assert again.code == 0 and "already revoked" in again.out

    items = json.loads(cli("admin-token", "list", "--json").out)["items"]
    assert [(i["name"], i["active"]) for i in items] == [("alice", False)]
    assert "token_hash" not in items[0] and "token" not in items[0]


async def _all_tokens(session: AsyncSession) -> Sequence[AdminToken]:
    return (await session.scalars(select(AdminToken))).all()


def test_names_are_checked_and_unique_among_active_tokens(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    bad = cli("admin-token", "create", "--name", "not ok")
    assert bad.code == 2 and bad.err.startswith("signvault: error: name:") and bad.out == ""

    assert cli("admin-token", "create", "--name", "ops").code == 0
    twice = cli("admin-token", "create", "--name", "ops")
    assert twice.code == 2 and "already named 'ops'" in twice.err and twice.out == ""

    assert cli("admin-token", "revoke", "ops").code == 0
    assert cli("admin-token", "create", "--name", "ops").code == 0  # the name is free again


def test_revoke_refusals(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    missing = cli("admin-token", "revoke", "nobody")
    assert missing.code == 2 and "no admin token 'nobody'" in missing.err

    env = cli("admin-token", "revoke", "env:SIGNVAULT_ADMIN_TOKEN")
    assert env.code == 2 and "SIGNVAULT_ADMIN_TOKEN" in env.err


def test_json_create_for_scripts(sqlite_cli: Cli) -> None:
    created = sqlite_cli("admin-token", "create", "--name", "deploy", "--json")
    body = json.loads(created.out)
    assert body["name"] == "deploy" and body["token"].startswith("sva_") and body["active"] is True
