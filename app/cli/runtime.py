"""What the management commands share with `signvault serve`: settings, engine, schema, vault, signing.

Everything is built from the same SIGNVAULT_* configuration and the same app modules as the service
(app.main builds its pieces the same way), so a credential stored here is one the service can use.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cli.errors import BAD_INPUT, CliError, one_line
from app.errors import ProblemError
from app.settings import Settings

if TYPE_CHECKING:
    from app.proxy.service import SigningService
    from app.vault.service import Vault

# The audit log's name for whoever runs the command line (the API records the admin token's name).
ACTOR_PREFIX = "cli:"


def note(message: str) -> None:
    """A remark for the person at the terminal, on stderr so stdout stays the command's result."""
    print(f"signvault: {message}", file=sys.stderr)


def load_settings() -> Settings:
    from pydantic_settings import SettingsError

    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = error.get("loc") or ()
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            problems.append(f"SIGNVAULT_{str(loc[0]).upper()}: {message}" if loc else message)
        raise CliError("bad configuration: " + "; ".join(problems)) from None
    except SettingsError as exc:  # e.g. a JSON variable that does not parse; the message names the field only
        raise CliError(f"bad configuration: {one_line(str(exc), 200)}") from None


def database_label(settings: Settings) -> str:
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "SIGNVAULT_DATABASE_URL"


def database_problem(exc: BaseException) -> str:
    """The driver's own words, first line only; never bound parameters (the engine hides them)."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return one_line(text.splitlines()[0] if text.strip() else type(exc).__name__, 200)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = ""
    return (ACTOR_PREFIX + user if user else "cli")[:64]


@dataclass
class Audit:
    """What one command contributes to its audit row (the API's AuditContext, for the command line)."""

    action: str
    status: int = 200
    credential_id: str | None = None
    credential_label: str | None = None
    credential_version: int | None = None
    exchange: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def about(self, credential: Any) -> None:
        self.credential_id = getattr(credential, "id", None)
        self.credential_label = getattr(credential, "label", None)
        self.exchange = getattr(credential, "exchange", None)
        self.credential_version = getattr(credential, "active_version", None)


class Runtime:
    """One command's engine and, when it needs them, the vault and a signing service."""

    def __init__(self, settings: Settings, engine: AsyncEngine, command: str) -> None:
        from app.db import create_readonly_sessionmaker, create_sessionmaker

        self.settings = settings
        self.engine = engine
        self.command = command
        self.sessionmaker = create_sessionmaker(engine)
        self.readonly_sessionmaker = create_readonly_sessionmaker(engine)
        self._vault: Vault | None = None
        self._signing: SigningService | None = None
        self._closers: list[Callable[[], Awaitable[object]]] = []

    # ---- sessions -------------------------------------------------------------------------------

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A short read that never takes SQLite's write lock (a running service keeps writing)."""
        async with self.readonly_sessionmaker() as session:
            yield session

    # ---- schema ---------------------------------------------------------------------------------

    async def ensure_schema(self) -> None:
        """Bring a missing or old schema to the latest, as `serve` would; or say to run `migrate`."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy.engine import Connection

        from app.db import READONLY
        from app.migrate import alembic_config, upgrade_to_head

        def current(connection: Connection) -> set[str]:
            return set(MigrationContext.configure(connection).get_current_heads())

        try:
            async with self.engine.execution_options(**{READONLY: True}).connect() as connection:
                have = await connection.run_sync(current)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise CliError(f"cannot open the database {database_label(self.settings)}: "
                           f"{database_problem(exc)}") from None
        script = ScriptDirectory.from_config(alembic_config())
        heads = set(script.get_heads())
        if have == heads:
            return
        known = {revision.revision for revision in script.walk_revisions()}
        if have - known:
            raise CliError(f"the database schema (revision {', '.join(sorted(have - known))}) is newer than "
                           "this signvault: upgrade signvault")
        state = "has no signvault tables yet" if not have else "is not at the latest schema"
        if not self.settings.auto_migrate:
            raise CliError(f"the database {state}: run `signvault migrate` first "
                           "(SIGNVAULT_AUTO_MIGRATE is off, so commands do not migrate it themselves)")
        await upgrade_to_head(self.engine)
        note(f"the database {state}: applied the migrations")

    # ---- vault ----------------------------------------------------------------------------------

    def _key_source(self) -> str:
        settings = self.settings
        if settings.master_keys is not None:
            return "SIGNVAULT_MASTER_KEYS"
        if settings.master_key is not None:
            return "SIGNVAULT_MASTER_KEY"
        if settings.master_key_file is not None:
            return f"SIGNVAULT_MASTER_KEY_FILE ({settings.master_key_file})"
        return f"the development key file {settings.dev_master_key_path.resolve()}"

    async def vault(self) -> Vault:
        """The vault as the service builds it, refusing up front a master key that cannot open the rows."""
        if self._vault is not None:
            return self._vault
        from app.vault.keyring import KeyRingError, load_keyring
        from app.vault.repository import count_by_master_key
        from app.vault.service import Vault

        settings = self.settings
        creates_dev_key = (not settings.master_key_configured and settings.uses_sqlite
                           and not settings.dev_master_key_path.exists())
        try:
            ring = load_keyring(settings)
        except KeyRingError as exc:
            raise CliError(f"no usable master key: {exc}") from None
        async with self.reading() as session:
            in_use = await count_by_master_key(session)
        missing = sorted(set(in_use) - set(ring.ids))
        if missing:
            raise CliError(
                f"wrong master key: stored credentials are sealed under {', '.join(missing)}, but "
                f"{self._key_source()} holds {', '.join(ring.ids)}; configure the master key the service uses")
        if creates_dev_key:
            note(f"DEVELOPMENT SETUP: no master key configured, so one was generated in "
                 f"{settings.dev_master_key_path.resolve()} (mode 0600). Back it up.")
        self._vault = Vault(ring)
        return self._vault

    # ---- signing --------------------------------------------------------------------------------

    async def signing(self) -> SigningService:
        """A SigningService built as app.main builds it: same egress path, Redis limits and nonces."""
        if self._signing is not None:
            return self._signing
        from app.proxy.factory import build_signing

        signing = build_signing(self.settings, await self.vault(), self.engine, self.readonly_sessionmaker)
        self._closers.append(signing.close)
        self._signing = signing.service
        return self._signing

    # ---- audit ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def audited(self, action: str) -> AsyncIterator[Audit]:
        """Write an audit row for this command, as the API does for each admin request."""
        audit = Audit(action)
        started = time.perf_counter()
        try:
            yield audit
        except ProblemError as exc:
            await self._record(audit, exc.status, started, quiet=True)
            raise
        except ValidationError:
            await self._record(audit, 422, started, quiet=True)
            raise
        except CliError as exc:
            await self._record(audit, 422 if exc.code == BAD_INPUT else 500, started, quiet=True)
            raise
        except Exception:
            await self._record(audit, 500, started, quiet=True)
            raise
        await self._record(audit, audit.status, started, quiet=False)
        if not action.startswith("list_"):
            await self._announce()

    async def _announce(self) -> None:
        """Running replicas cache clients and keys: tell them, as an API write would (over Redis)."""
        if not self.settings.redis_url:
            return  # without Redis each replica's cache expires by itself within seconds
        from app.cache.invalidation import Invalidation
        from app.redis_client import connect

        redis = connect(self.settings.redis_url)
        try:
            await Invalidation(redis, self.settings.redis_prefix).announce()
        finally:
            await redis.aclose()

    async def _record(self, audit: Audit, status: int, started: float, *, quiet: bool) -> None:
        from app.audit.models import AuditEvent

        event = AuditEvent(
            request_id=uuid.uuid4().hex, actor_kind="admin", actor=_actor(), action=audit.action, method="CLI",
            path=self.command[:512], status=status, latency_ms=round((time.perf_counter() - started) * 1000, 3),
            credential_id=audit.credential_id, credential_label=audit.credential_label,
            credential_version=audit.credential_version, exchange=audit.exchange,
        )
        try:
            async with self.writing() as session:
                session.add(event)
        except Exception as exc:  # the command's own outcome matters more than its audit row
            if not quiet:
                note(f"warning: the audit row was not written ({type(exc).__name__})")

    # ---- lifetime -------------------------------------------------------------------------------

    async def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        await self.engine.dispose()


def create_engine_for(settings: Settings) -> AsyncEngine:
    from sqlalchemy.exc import ArgumentError

    from app.db import create_engine

    try:
        return create_engine(settings.resolved_database_url)
    except ArgumentError as exc:
        raise CliError(f"SIGNVAULT_DATABASE_URL is not a usable database URL: {one_line(str(exc), 200)}") from None
    except ImportError as exc:
        raise CliError(f"SIGNVAULT_DATABASE_URL names a database driver that is not installed ({exc.name}); "
                       "use postgresql+asyncpg://… or sqlite+aiosqlite:///…") from None
    except OSError as exc:
        raise CliError(f"cannot create the database file for {database_label(settings)}: "
                       f"{exc.strerror or exc}") from None


@asynccontextmanager
async def open_runtime(settings: Settings, command: str, *, schema: bool = True) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings, create_engine_for(settings), command)
    try:
        if schema:
            await runtime.ensure_schema()
        try:
            yield runtime
        except DBAPIError as exc:
            raise CliError(f"database error on {database_label(settings)}: {database_problem(exc)}") from None
    finally:
        await runtime.close()


def command(body: Callable[[Runtime, Any], Awaitable[int]], *, schema: bool = True) -> Callable[[Any], int]:
    """A command that runs `body` with a Runtime on the configured database, in its own event loop."""

    def run(args: Any) -> int:
        import asyncio

        settings = load_settings()

        async def go() -> int:
            async with open_runtime(settings, getattr(args, "prog", "signvault"), schema=schema) as runtime:
                return await body(runtime, args)

        return asyncio.run(go())

    return run
