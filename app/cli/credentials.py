"""`signvault credentials add|list|check|rotate`: exchange API keys, through the same services as the API."""

from __future__ import annotations

import argparse
import textwrap
import uuid
from typing import Any, get_args

from pydantic import SecretStr, ValidationError

from app.cli.base import add_command, add_group, comma_list, json_option
from app.cli.errors import FAILED, BadInput, validation_message
from app.cli.output import NONE, as_json, fields, listed, table, when
from app.cli.runtime import Runtime, command, note
from app.cli.secret_input import STDIN_FORMAT, KeySecrets, read_key_secrets
from app.credentials import repository, service, views
from app.credentials.models import Credential
from app.credentials.schemas import (
    CheckRead,
    CredentialCreate,
    CredentialDetail,
    CredentialRead,
    CredentialRotate,
)
from app.errors import InvalidInput
from app.exchanges.base import CheckResult, ExchangeSpec, KeyType
from app.exchanges.registry import EXCHANGES, get_exchange

SECRET_FIELDS = frozenset({"api_key", "api_secret", "passphrase"})
PLACEHOLDER = SecretStr("placeholder")
KEY_TYPES: tuple[str, ...] = get_args(KeyType)


# ---- printing -------------------------------------------------------------------------------------

def _ref(credential: CredentialRead) -> str:
    return f"{credential.exchange}:{credential.label}"


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _check_pairs(check: CheckRead, *, status: bool = True) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = [("check", check.status)] if status else []
    pairs += [("detail", check.detail or NONE), ("checked", when(check.checked_at))]
    if check.permissions is not None:
        p = check.permissions
        pairs.append(("at the exchange", f"read {_yes_no(p.read)}, trade {_yes_no(p.trade)}, "
                                         f"withdraw {_yes_no(p.withdraw)}, IP restricted {_yes_no(p.ip_restricted)}"))
    else:
        pairs.append(("at the exchange", "the exchange does not report the key's permissions"))
    pairs.extend(("warning", warning) for warning in check.warnings)
    return pairs


def _print_detail(detail: CredentialDetail, *, with_check: bool = True) -> None:
    fields([
        ("id", detail.id),
        ("exchange", f"{detail.exchange} ({detail.environment})"),
        ("key type", detail.key_type),
        ("key hint", detail.api_key_hint),
        ("permissions", listed(detail.permissions)),
        ("rate limit", detail.rate_limit or NONE),
        ("version", str(detail.active_version)),
        ("enabled", "yes" if detail.enabled else "no"),
        *(_check_pairs(detail.check) if detail.check is not None and with_check else []),
    ])


# ---- checks before asking for any secret -----------------------------------------------------------

def _spec(exchange_id: str) -> ExchangeSpec:
    spec = get_exchange(exchange_id)
    if spec is None:
        raise InvalidInput.field("exchange", f"unknown exchange; known: {', '.join(sorted(EXCHANGES))}")
    return spec


def _precheck(values: dict[str, Any]) -> None:
    """Everything but the secrets, with the same schema and service checks as the API, so nobody types a
    secret only to hear the label was wrong. The real validation runs again once the secrets are in."""
    try:
        data = CredentialCreate(**values, api_key=PLACEHOLDER, api_secret=PLACEHOLDER)
    except ValidationError as exc:
        # Only errors about the other fields: the secrets here are placeholders.
        rest = [e for e in exc.errors() if not (e.get("loc") and e["loc"][0] in SECRET_FIELDS)]
        if rest:
            raise BadInput(validation_message(rest)) from None
        return
    try:
        service.new_material(data)
    except InvalidInput as exc:
        if not exc.errors or exc.errors[0].field not in SECRET_FIELDS:
            raise


def _secrets(args: argparse.Namespace, spec: ExchangeSpec, key_type: str) -> KeySecrets:
    return read_key_secrets(use_stdin=args.stdin, exchange_name=spec.name, needs_passphrase=spec.needs_passphrase,
                            pem=key_type != "hmac")


# ---- commands -------------------------------------------------------------------------------------

async def _add(runtime: Runtime, args: argparse.Namespace) -> int:
    values: dict[str, Any] = {"exchange": args.exchange, "label": args.label, "key_type": args.key_type,
                              "environment": args.environment, "rate_limit": args.rate_limit}
    if args.permissions is not None:
        values["permissions"] = comma_list(args.permissions)
    values = {name: value for name, value in values.items() if value is not None}
    async with runtime.audited("create_credential") as audit:
        _precheck(values)
        spec = _spec(args.exchange)
        vault = await runtime.vault()
        async with runtime.reading() as session:
            if await repository.label_taken(session, spec.id, args.label):
                raise service.LabelTaken(f"{spec.id} already has a credential labelled '{args.label}'")
        secrets = _secrets(args, spec, args.key_type or spec.default_key_type)
        data = CredentialCreate(**values, api_key=secrets.api_key, api_secret=secrets.api_secret,
                                passphrase=secrets.passphrase)
        credential_id = str(uuid.uuid4())
        result: CheckResult | None = None
        if runtime.settings.refuse_withdraw_keys:
            # As the API does: ask the exchange first, and refuse a key that can withdraw.
            spec, key_type, material = service.new_material(data)
            probe = Credential(id=credential_id, exchange=spec.id, label=data.label, environment=data.environment,
                               permissions=list(data.permissions), rate_limit=data.rate_limit, enabled=True,
                               active_version=1, key_type=key_type, api_key_hint="")
            signing = await runtime.signing()
            result = await signing.check(probe, service.signing_key_of(spec.id, key_type, material))
            service.refuse_withdrawing(result)
        async with runtime.writing() as session:
            credential = await service.create(session, vault, data, credential_id)
            audit.about(credential)
            if result is not None:
                await service.record_check(session, credential.id, result)
            detail = await views.detail(session, credential)
        audit.status = 201
    if args.json:
        as_json(detail)
    else:
        print(f"stored credential {_ref(detail)}")
        _print_detail(detail)
    return 0


async def _list(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("list_credentials"), runtime.reading() as session:
        items = [views.summary(c) for c in await repository.list_all(session, args.exchange)]
    if args.json:
        as_json({"items": [item.model_dump(mode="json") for item in items]})
        return 0
    if not items:
        print("no credentials stored" + (f" for {args.exchange}" if args.exchange else ""))
        return 0
    table(["CREDENTIAL", "ID", "ENV", "TYPE", "KEY", "PERMISSIONS", "VERSION", "ENABLED", "LAST CHECK"],
          [[_ref(c), c.id, c.environment, c.key_type, c.api_key_hint, listed(c.permissions), str(c.active_version),
            "yes" if c.enabled else "no", f"{c.check.status} {when(c.check.checked_at)}" if c.check else NONE]
           for c in items])
    return 0


async def _check(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("check_credential") as audit:
        async with runtime.reading() as session:
            credential = await service.get(session, args.ref)
        audit.about(credential)
        signing = await runtime.signing()
        result = await signing.check(credential, await signing.keys.get(credential))
        async with runtime.writing() as session:
            await service.record_check(session, credential.id, result)
    check = views.fresh_check(result)
    if args.json:
        as_json(check)
    else:
        print(f"{credential.exchange}:{credential.label}: {check.status}")
        fields(_check_pairs(check, status=False))
    return 0 if result.status == "connected" else FAILED


async def _rotate(runtime: Runtime, args: argparse.Namespace) -> int:
    async with runtime.audited("rotate_credential") as audit:
        async with runtime.reading() as session:
            loaded = await service.get(session, args.ref)
        audit.about(loaded)
        spec = _spec(loaded.exchange)
        try:  # the key type, before asking for the secrets
            service.rotation_material(loaded, CredentialRotate(
                api_key=PLACEHOLDER, api_secret=PLACEHOLDER, key_type=args.key_type))
        except InvalidInput as exc:
            if not exc.errors or exc.errors[0].field not in SECRET_FIELDS:
                raise
        vault = await runtime.vault()
        secrets = _secrets(args, spec, args.key_type or loaded.key_type)
        body = CredentialRotate(api_key=secrets.api_key, api_secret=secrets.api_secret,
                                passphrase=secrets.passphrase, key_type=args.key_type)
        result: CheckResult | None = None
        refuse_withdraw = runtime.settings.refuse_withdraw_keys
        if args.force and not refuse_withdraw:
            service.rotation_material(loaded, body)  # still refuse what cannot sign for this exchange
        else:  # as the API does: checked, and with the setting, even with --force
            key_type, material = service.rotation_material(loaded, body)
            signing = await runtime.signing()
            result = await signing.check(loaded, service.signing_key_of(loaded.exchange, key_type, material))
            if not args.force and result.status != "connected":
                raise service.KeyCheckFailed(
                    f"{result.status}: {result.detail}. The old key stays active; fix the new key (or use --force).")
            if refuse_withdraw:
                service.refuse_withdrawing(result)
        guarded = body.model_copy(update={"expected_version": loaded.active_version})
        async with runtime.writing() as session:
            credential = await service.get(session, loaded.id)
            rotated = await service.rotate(session, vault, credential, guarded)
            if result is not None:
                await service.record_check(session, rotated.id, result)
                await session.refresh(rotated)
            detail = await views.detail(session, rotated)
        audit.about(rotated)
    if args.json:
        as_json(detail)
        return 0
    print(f"rotated {_ref(detail)} to version {detail.active_version}: the new key is active now "
          f"(the old one stays stored, inactive)")
    _print_detail(detail, with_check=result is not None)  # after --force, the last check was of the old key
    if result is None:
        note("the new key was not checked at the exchange (--force): run `signvault credentials check "
             f"{_ref(detail)}`")
    return 0


# ---- parsers --------------------------------------------------------------------------------------

def _exchanges_help() -> str:
    lines = []
    for exchange_id, spec in sorted(EXCHANGES.items()):
        notes = [f"key types {'/'.join(spec.key_types)}" if len(spec.key_types) > 1 else spec.key_types[0]]
        if spec.needs_passphrase:
            notes.append("passphrase")
        notes.append("environments " + "/".join(spec.environments))
        lines.append(f"  {exchange_id:<17} {spec.name}: {', '.join(notes)}")
    return "\n".join(lines)


SECRETS_HELP = (
    "How the secrets are read: never from the command line (every local user sees arguments in `ps`,\n"
    "and they stay in shell history) and never from environment variables. In a terminal, signvault\n"
    "prompts for them and shows nothing while you type or paste. With --stdin it reads them from stdin:\n"
    + textwrap.fill(STDIN_FORMAT + ".", 100))


def register(commands: Any) -> None:
    group = add_group(
        commands, "credentials", summary="add, list, check or rotate exchange API keys",
        description="""
            Exchange API keys ("credentials") are stored encrypted under the master key. Bots never see
            them: signvault signs their requests. Each credential has a label, unique per exchange; refer
            to one by its id, its label, or exchange:label.""",
        examples="""
            signvault credentials add --exchange binance --label main
            signvault credentials list
            signvault credentials check binance:main
            signvault credentials rotate binance:main""")

    add = add_command(
        group, "add", summary="store an exchange API key (the secrets are prompted for or piped)",
        description=textwrap.dedent("""
            Store an exchange API key. The key and secret (and the passphrase, for exchanges that have
            one) are checked the same way the API checks them, encrypted, and stored; the output shows
            the credential's id, label and a key hint, never the secret.""").strip()
        + "\n\n" + SECRETS_HELP + "\n\nexchanges:\n" + _exchanges_help(),
        examples="""
            signvault credentials add --exchange binance --label main          # prompts for key and secret
            signvault credentials add --exchange okx --label hedge --permissions read,trade --rate-limit 5/second
            printf '%s\\n%s\\n%s\\n' "$KEY" "$SECRET" "$PASSPHRASE" \\
                | signvault credentials add --exchange okx --label main --stdin""")
    add.add_argument("--exchange", required=True, help="exchange id, e.g. binance (the list is above)")
    add.add_argument("--label", required=True,
                     help="name bots use for it, unique per exchange (letters, digits, . _ -)")
    add.add_argument("--key-type", choices=KEY_TYPES,
                     help="the exchange's usual type if omitted (hmac almost everywhere)")
    add.add_argument("--environment", help="live (default), or the exchange's testnet/demo/sandbox")
    add.add_argument("--permissions", metavar="LIST",
                     help="what bots may do with it: comma-separated read,trade,withdraw (default read,trade)")
    add.add_argument("--rate-limit", metavar="LIMITS",
                     help="requests allowed with this key, e.g. '10/second;1200/minute' (default: the exchange's)")
    add.add_argument("--stdin", action="store_true",
                     help="read the key, secret and passphrase from stdin, one per line, instead of prompting")
    json_option(add)
    add.set_defaults(run=command(_add))

    listing = add_command(
        group, "list", summary="list stored credentials (metadata only)",
        description="List the stored credentials: label, id, environment, key type, key hint, permissions, "
                    "active version and the last connection check. Secrets are never shown.",
        examples="""
            signvault credentials list
            signvault credentials list --exchange okx --json""")
    listing.add_argument("--exchange", help="only this exchange's credentials")
    json_option(listing)
    listing.set_defaults(run=command(_list))

    check = add_command(
        group, "check", summary="check at the exchange that a stored key works",
        description="""
            Call a cheap authenticated endpoint of the exchange with the stored key, through the same
            egress path (proxy or source IP) as the service, and report in the exchange's terms:
            connected, invalid_key, invalid_signature, ip_not_whitelisted, clock_skew,
            permission_denied or exchange_unavailable; with the key's permissions where the exchange
            says, and warnings (withdrawals enabled, no IP restriction). The result is stored on the
            credential, as the API's check does. Exits 1 unless the status is "connected".""",
        examples="""
            signvault credentials check binance:main
            signvault credentials check 0b5e6d1c-3f2a-4e8b-9c7d-1a2b3c4d5e6f --json""")
    check.add_argument("ref", metavar="REF", help="the credential's id, label or exchange:label")
    json_option(check)
    check.set_defaults(run=command(_check))

    rotate = add_command(
        group, "rotate", summary="replace a credential's key with a new one, without downtime",
        description=textwrap.dedent("""
            Replace a credential's key: the new key is checked at the exchange first and becomes the
            active version only if the exchange answers "connected"; otherwise the old key keeps serving
            and the reason is printed (exit 2). --force skips the check. Bots keep using the same id or
            label; requests already under way finish with the old version.""").strip() + "\n\n" + SECRETS_HELP,
        examples="""
            signvault credentials rotate binance:main
            signvault credentials rotate okx:main --stdin < new-okx-key.txt
            signvault credentials rotate binance:main --key-type ed25519 --force""")
    rotate.add_argument("ref", metavar="REF", help="the credential's id, label or exchange:label")
    rotate.add_argument("--force", action="store_true", help="make the new key active without checking it first")
    rotate.add_argument("--key-type", choices=KEY_TYPES, help="the new key's type (default: the current one)")
    rotate.add_argument("--stdin", action="store_true",
                        help="read the new key, secret and passphrase from stdin, one per line, instead of prompting")
    json_option(rotate)
    rotate.set_defaults(run=command(_rotate))
