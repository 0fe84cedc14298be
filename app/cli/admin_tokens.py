"""`signvault admin-token create|list|revoke`: the bearer tokens that may call /admin/*."""

from __future__ import annotations

import argparse
import re
import uuid
from typing import Any

from sqlalchemy import select

from app.admin.auth import ENV_TOKEN_NAME
from app.admin.models import AdminToken
from app.cli.base import add_command, add_group, json_option
from app.cli.errors import BadInput
from app.cli.output import as_json, table, when
from app.cli.runtime import Runtime, command, note
from app.credentials.schemas import LABEL_PATTERN
from app.db import utcnow
from app.tokens import ADMIN_PREFIX, hash_token, new_token

NAME = re.compile(LABEL_PATTERN)


def _row(token: AdminToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "created_at": token.created_at.isoformat(),
            "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
            "active": token.revoked_at is None}


async def _create(runtime: Runtime, args: argparse.Namespace) -> int:
    name: str = args.name
    if not NAME.match(name):
        raise BadInput("name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    async with runtime.audited("create_admin_token"), runtime.writing() as session:
        taken = await session.scalar(
            select(AdminToken.id).where(AdminToken.name == name, AdminToken.revoked_at.is_(None)))
        if taken is not None:
            raise BadInput(f"an active admin token is already named '{name}' (id {taken}); "
                           "choose another name or revoke that one first")
        token = new_token(ADMIN_PREFIX)
        row = AdminToken(id=str(uuid.uuid4()), name=name, token_hash=hash_token(token), created_at=utcnow())
        session.add(row)
    if args.json:
        as_json({**_row(row), "token": token})
    else:
        print(token)
        note(f"created admin token '{name}' (id {row.id}). It is shown only this once: signvault keeps "
             "only its hash. Send it as 'Authorization: Bearer <token>'.")
    return 0


async def _list(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("list_admin_tokens"), runtime.reading() as session:
        tokens = (await session.scalars(select(AdminToken).order_by(AdminToken.created_at))).all()
    if args.json:
        as_json({"items": [_row(t) for t in tokens]})
        return 0
    if tokens:
        table(["NAME", "ID", "CREATED", "REVOKED"],
              [[t.name, t.id, when(t.created_at), when(t.revoked_at)] for t in tokens])
    else:
        print("no admin tokens stored")
    if runtime.settings.admin_token is not None:
        note(f"SIGNVAULT_ADMIN_TOKEN is set here too: the service accepts it as '{ENV_TOKEN_NAME}'")
    return 0


async def _revoke(runtime: Runtime, args: argparse.Namespace) -> int:
    ref: str = args.ref
    if ref == ENV_TOKEN_NAME:
        raise BadInput("that token comes from SIGNVAULT_ADMIN_TOKEN: remove the variable from the service's "
                       "configuration and restart it")
    async with runtime.audited("revoke_admin_token"), runtime.writing() as session:
        token = await session.get(AdminToken, ref)
        if token is None:
            named = (await session.scalars(
                select(AdminToken).where(AdminToken.name == ref).order_by(AdminToken.created_at))).all()
            active = [t for t in named if t.revoked_at is None]
            if len(active) > 1:
                raise BadInput(f"{len(active)} active admin tokens are named '{ref}'; revoke one by id: "
                               + ", ".join(t.id for t in active))
            token = active[0] if active else (named[-1] if named else None)
        if token is None:
            raise BadInput(f"no admin token '{ref}' (give its name or id; `signvault admin-token list` shows them)")
        already = token.revoked_at is not None
        if not already:
            token.revoked_at = utcnow()
        left = await session.scalar(select(AdminToken.id).where(AdminToken.revoked_at.is_(None)).limit(1))
    if already:
        print(f"admin token '{token.name}' (id {token.id}) was already revoked on {when(token.revoked_at)}")
        return 0
    print(f"revoked admin token '{token.name}' (id {token.id}): it is refused from the next request on")
    if left is None and runtime.settings.admin_token is None:
        note("no active admin token is left: create one with `signvault admin-token create --name NAME` "
             f"(else the next start of the service writes a new one to {runtime.settings.dev_admin_token_path})")
    return 0


def register(commands: Any) -> None:
    group = add_group(
        commands, "admin-token", summary="create, list or revoke admin tokens (for the /admin API)",
        description="""
            Admin tokens let a person or a deployment script call signvault's /admin API (add credentials,
            create bot clients, read the audit log). signvault stores only a hash of each token, so a token
            is shown once, when it is created. Revoking one takes effect on the next request.""",
        examples="""
            signvault admin-token create --name alice
            signvault admin-token list
            signvault admin-token revoke alice""")

    create = add_command(
        group, "create", summary="create an admin token and print it (once)",
        description="""
            Create a new admin token and print it on stdout, alone, so it can be captured by a script.
            It is not shown again: signvault keeps only its hash. Use it as the HTTP header
            'Authorization: Bearer <token>'.""",
        examples="""
            signvault admin-token create --name alice
            signvault admin-token create --name deploy-ci > deploy-ci.token   # keep the file private""")
    create.add_argument("--name", required=True, help="who or what uses it (letters, digits, . _ -), e.g. alice")
    json_option(create)
    create.set_defaults(run=command(_create))

    listing = add_command(
        group, "list", summary="list admin tokens (names and dates, never the tokens)",
        description="List the stored admin tokens: name, id, when created and when revoked. Tokens and "
                    "their hashes are never shown.",
        examples="""
            signvault admin-token list
            signvault admin-token list --json""")
    json_option(listing)
    listing.set_defaults(run=command(_list))

    revoke = add_command(
        group, "revoke", summary="revoke an admin token by name or id",
        description="Revoke an admin token: the service refuses it from the next request on. Revoked tokens "
                    "stay listed. The token in SIGNVAULT_ADMIN_TOKEN cannot be revoked here: remove the "
                    "variable instead.",
        examples="""
            signvault admin-token revoke alice
            signvault admin-token revoke 6f1c2a9e-0b7d-4c1e-9a55-2f0d3c4b5a6e""")
    revoke.add_argument("ref", metavar="NAME_OR_ID", help="the token's name or id (see `admin-token list`)")
    revoke.set_defaults(run=command(_revoke))

