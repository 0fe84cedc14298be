"""`signvault clients add|list|revoke|rotate-token`: the bots, their tokens and what they may use."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.base import add_command, add_group, comma_list, json_option
from app.cli.errors import BadInput
from app.cli.output import NONE, as_json, fields, listed, table, when
from app.cli.runtime import Runtime, command, note
from app.clients import repository, service, views
from app.clients.schemas import ClientCreate, ClientRead, ClientWithToken
from app.errors import InvalidInput

SHOWN_ONCE = ("It is shown only this once: signvault keeps only its hash. The bot sends it as the "
              "X-Signvault-Token header.")


def _refs(client: ClientRead) -> str:
    return listed(sorted(f"{c.exchange}:{c.label}" for c in client.credentials))


def _print_with_token(client: ClientWithToken, verb: str) -> None:
    """The token alone on stdout (so `TOKEN=$(signvault clients add ...)` works); the rest on stderr."""
    print(client.token)
    note(f"{verb} client '{client.name}' (id {client.id}). {SHOWN_ONCE}")
    fields([("permissions", listed(client.permissions)), ("credentials", _refs(client)),
            ("rate limit", client.rate_limit or NONE)], file=sys.stderr)


def _naming_refs(exc: InvalidInput, refs: list[str]) -> InvalidInput | BadInput:
    """The API names the failing list positions (it never echoes input); here the user typed the refs."""
    missing = []
    for problem in exc.errors or []:
        _, _, index = problem.field.partition("credentials.")
        if not index.isdigit() or int(index) >= len(refs):
            return exc
        missing.append(refs[int(index)])
    if not missing:
        return exc
    return BadInput(f"no such credential: {', '.join(missing)} (`signvault credentials list` shows them)")


async def _add(runtime: Runtime, args: argparse.Namespace) -> int:
    values: dict[str, Any] = {"name": args.name, "rate_limit": args.rate_limit}
    if args.credentials is not None:
        values["credentials"] = comma_list(args.credentials)
    if args.permissions is not None:
        values["permissions"] = comma_list(args.permissions)
    async with runtime.audited("create_client") as audit:
        data = ClientCreate(**{name: value for name, value in values.items() if value is not None})
        async with runtime.writing() as session:
            try:
                client, token = await service.create(session, data)
            except InvalidInput as exc:
                raise _naming_refs(exc, data.credentials) from None
            created = ClientWithToken(**views.summary(client).model_dump(), token=token)
        audit.status = 201
    if args.json:
        as_json(created)
    else:
        _print_with_token(created, "created")
    return 0


async def _list(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("list_clients"), runtime.reading() as session:
        items = [views.summary(c) for c in await repository.list_all(session)]
    if args.json:
        as_json({"items": [item.model_dump(mode="json") for item in items]})
        return 0
    if not items:
        print("no clients")
        return 0
    table(["NAME", "ID", "PERMISSIONS", "CREDENTIALS", "RATE LIMIT", "CREATED", "REVOKED"],
          [[c.name, c.id, listed(c.permissions), _refs(c), c.rate_limit or NONE, when(c.created_at),
            when(c.revoked_at)] for c in items])
    return 0


async def _revoke(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("revoke_client"), runtime.writing() as session:
        client = await service.get(session, args.ref)
        already = client.revoked_at is not None
        await service.revoke(session, client)
    if already:
        print(f"client '{client.name}' (id {client.id}) was already revoked on {when(client.revoked_at)}")
    else:
        print(f"revoked client '{client.name}' (id {client.id}): its token is refused from the next request on")
    return 0


async def _rotate_token(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("rotate_client_token"), runtime.writing() as session:
        client = await service.get(session, args.ref)
        token = await service.rotate_token(session, client)
        rotated = ClientWithToken(**views.summary(client).model_dump(), token=token)
    if args.json:
        as_json(rotated)
    else:
        _print_with_token(rotated, "new token for")
        note("the old token is refused from the next request on")
    return 0


def register(commands: Any) -> None:
    group = add_group(
        commands, "clients", summary="add, list or revoke bot clients and their tokens",
        description="""
            A client is a trading bot (or a team of bots) with its own signvault token. It may use only
            the credentials granted to it, and only for what both it and the credential are allowed
            (read, trade, withdraw). The token is shown once, when the client is created.""",
        examples="""
            signvault clients add --name grid-bot --credentials binance:main --permissions read,trade
            signvault clients list
            signvault clients revoke grid-bot""")

    add = add_command(
        group, "add", summary="create a client and print its token (once)",
        description="""
            Create a client allowed to use the given credentials, and print its token on stdout, alone,
            so a script can capture it (the details go to stderr). The token is not shown again:
            signvault keeps only its hash. The bot sends it as the X-Signvault-Token header.""",
        examples="""
            signvault clients add --name grid-bot --credentials binance:main --permissions read,trade
            TOKEN=$(signvault clients add --name reporter --credentials binance:main,okx:main)   # read only""")
    add.add_argument("--name", required=True, help="unique name (letters, digits, . _ -), e.g. grid-bot")
    add.add_argument("--credentials", metavar="LIST",
                     help="comma-separated credentials it may use: ids, labels or exchange:label")
    add.add_argument("--permissions", metavar="LIST",
                     help="comma-separated read,trade,withdraw (default read)")
    add.add_argument("--rate-limit", metavar="LIMITS",
                     help="across all its credentials, e.g. '20/second;1000/minute' (default: none)")
    json_option(add)
    add.set_defaults(run=command(_add))

    listing = add_command(
        group, "list", summary="list clients (never their tokens)",
        description="List every client, revoked ones included: name, id, permissions, credentials, rate "
                    "limit, created and revoked dates. Tokens are never shown.",
        examples="""
            signvault clients list
            signvault clients list --json""")
    json_option(listing)
    listing.set_defaults(run=command(_list))

    revoke = add_command(
        group, "revoke", summary="revoke a client's token",
        description="Revoke a client: its token is refused from the next request on. The client stays "
                    "listed, for the audit log; create a new client to give the bot access again.",
        examples="""
            signvault clients revoke grid-bot""")
    revoke.add_argument("ref", metavar="REF", help="the client's name or id")
    revoke.set_defaults(run=command(_revoke))

    rotate = add_command(
        group, "rotate-token", summary="give a client a new token (the old one stops working)",
        description="Issue a new token for a client and print it on stdout, once. The old token is refused "
                    "from the next request on.",
        examples="""
            signvault clients rotate-token grid-bot""")
    rotate.add_argument("ref", metavar="REF", help="the client's name or id")
    json_option(rotate)
    rotate.set_defaults(run=command(_rotate_token))

