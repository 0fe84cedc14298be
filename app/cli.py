"""`signvault` command line: serve, migrate, rewrap, openapi."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from app.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        fields = ", ".join("SIGNVAULT_" + str(e["loc"][0]).upper() + ": " + e["msg"] for e in exc.errors())
        raise SystemExit(f"signvault: bad configuration: {fields}") from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        proxy_headers=False,  # never trust X-Forwarded-* from whoever connects
        server_header=False,
        log_level=settings.log_level.lower(),
    )
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from app.db import create_engine
    from app.migrate import upgrade_to_head

    async def run() -> None:
        engine = create_engine(_settings().resolved_database_url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is at the latest schema")
    return 0


def _rewrap(args: argparse.Namespace) -> int:
    from app.db import create_engine, create_sessionmaker
    from app.logging_setup import configure_logging
    from app.vault.envelope import VaultIntegrityError
    from app.vault.keyring import KeyRingError, load_keyring
    from app.vault.rewrap import rewrap_all

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        ring = load_keyring(settings)
    except KeyRingError as exc:
        print(f"signvault rewrap: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        engine = create_engine(settings.resolved_database_url)
        try:
            report = await rewrap_all(create_sessionmaker(engine), ring, batch_size=args.batch_size)
        except VaultIntegrityError as exc:
            print(f"signvault rewrap: stopped: {exc}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        print(f"rewrapped {report.rewrapped} data keys under {report.target}; "
              f"{report.remaining} remain on older keys")
        return 0 if report.remaining == 0 else 1

    return asyncio.run(run())


def _openapi(args: argparse.Namespace) -> int:
    from app.openapi import render_openapi

    text = render_openapi()
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signvault",
        description="Hold exchange API credentials and sign requests for trading bots. "
        "Configuration comes from SIGNVAULT_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service (applies migrations first)")
    serve.add_argument("--host", help="address to listen on (default SIGNVAULT_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default SIGNVAULT_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date and exit")
    migrate.set_defaults(run=_migrate)

    rewrap = commands.add_parser(
        "rewrap", help="re-wrap every data key under the newest master key (safe to interrupt and re-run)")
    rewrap.add_argument("--batch-size", type=int, default=100, help="rows per committed batch (default 100)")
    rewrap.set_defaults(run=_rewrap)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document (or write it with --out)")
    openapi.add_argument("--out", help="file to write, e.g. openapi/openapi.json")
    openapi.set_defaults(run=_openapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
