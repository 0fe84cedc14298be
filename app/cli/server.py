"""`signvault serve|migrate|rewrap|openapi`: running the service and keeping its storage current."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from app.cli.base import add_command
from app.cli.errors import FAILED, BadInput, CliError
from app.cli.runtime import database_label, database_problem, load_settings, open_runtime


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server.connection import HttpConnection

    settings = load_settings()
    if args.workers < 1:
        raise BadInput("--workers must be at least 1")
    if args.workers > 1 and not settings.redis_url:
        # Each worker would spend every rate limit in full and keep its own Kraken nonce sequence.
        raise CliError("--workers above 1 needs SIGNVAULT_REDIS_URL: worker processes share rate limits, "
                       "cooldowns and Kraken nonces through it, like replicas")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        proxy_headers=False,  # never trust X-Forwarded-* from whoever connects
        server_header=False,
        http=HttpConnection,  # signvault's own HTTP/1.1 protocol (app/server/)
        access_log=False,  # the request observer writes one scrubbed JSON access line per request
        log_level=settings.log_level.lower(),
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.migrate import upgrade_to_head

    settings = load_settings()

    async def run() -> None:
        async with open_runtime(settings, args.prog, schema=False) as runtime:
            try:
                await upgrade_to_head(runtime.engine)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                raise CliError(f"cannot migrate the database {database_label(settings)}: "
                               f"{database_problem(exc)}") from None

    asyncio.run(run())
    print("database is at the latest schema")
    return 0


def _rewrap(args: argparse.Namespace) -> int:
    from app.observability.logs import configure_logging
    from app.vault.envelope import VaultIntegrityError
    from app.vault.keyring import KeyRingError, load_keyring
    from app.vault.rewrap import TargetRetired, rewrap_all

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        ring = load_keyring(settings)
    except KeyRingError as exc:
        raise CliError(f"no usable master key: {exc}") from None

    async def run() -> int:
        async with open_runtime(settings, args.prog) as runtime:
            try:
                report = await rewrap_all(runtime.sessionmaker, ring, batch_size=args.batch_size)
            except (VaultIntegrityError, TargetRetired) as exc:
                raise CliError(f"stopped: {exc}") from None
        print(f"rewrapped {report.rewrapped} data keys under {report.target}; "
              f"{report.remaining} remain on older keys")
        return 0 if report.remaining == 0 else FAILED

    return asyncio.run(run())


def _openapi(args: argparse.Namespace) -> int:
    from app.openapi import render_openapi

    text = render_openapi()
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def register(commands: Any) -> None:
    serve = add_command(
        commands, "serve", summary="run the HTTP service (applies migrations first)",
        description="""
            Run signvault's HTTP API: the admin API (/admin/...), the bots' signing proxy (/proxy,
            /sign) and the health checks (/healthz, /readyz). On the first start in an empty directory
            it creates a SQLite database, a development master key and a first admin token, each in a
            file of mode 0600, and says where in its log.""",
        examples="""
            signvault serve
            SIGNVAULT_DATA_DIR=/var/lib/signvault signvault serve --host 0.0.0.0 --port 8080""")
    serve.add_argument("--host", help="address to listen on (default SIGNVAULT_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default SIGNVAULT_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=_serve)

    migrate = add_command(
        commands, "migrate", summary="bring the database schema up to date and exit",
        description="Apply the database migrations that have not run yet, then exit. `serve` and the other "
                    "commands do this themselves unless SIGNVAULT_AUTO_MIGRATE=false.",
        examples="""
            SIGNVAULT_DATABASE_URL=postgresql+asyncpg://signvault:pw@db/signvault signvault migrate""")
    migrate.set_defaults(run=_migrate)

    rewrap = add_command(
        commands, "rewrap", summary="re-wrap every data key under the newest master key",
        description="""
            Step 4 of a master key rotation (see the README): re-wrap every credential's data key under
            the master key that now seals, in committed batches. Safe to interrupt and re-run. Exits 0
            when no row is left on an older key, 1 otherwise.""",
        examples="""
            SIGNVAULT_MASTER_KEYS=<old>,<new> signvault rewrap""")
    rewrap.add_argument("--batch-size", type=int, default=100, help="rows per committed batch (default 100)")
    rewrap.set_defaults(run=_rewrap)

    openapi = add_command(
        commands, "openapi", summary="print the OpenAPI document (or write it with --out)",
        description="Print the API's OpenAPI document, as committed in openapi/openapi.json.",
        examples="""
            signvault openapi --out openapi/openapi.json""")
    openapi.add_argument("--out", help="file to write, e.g. openapi/openapi.json")
    openapi.set_defaults(run=_openapi)
