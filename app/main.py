"""The app factory: settings in, a FastAPI app with every capability mounted out."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__, busy_poll
from app.admin.bootstrap import ensure_admin_token
from app.audit.routes import router as audit_router
from app.audit.writer import AuditWriter
from app.background import start_background_checks
from app.body_limit import BodyLimit
from app.cache.invalidation import Invalidation
from app.clients.routes import me_router
from app.clients.routes import router as clients_router
from app.credentials.routes import router as credentials_router
from app.db import create_engine, create_readonly_sessionmaker, create_sessionmaker
from app.egress.monitor import EgressMonitor
from app.egress.routes import router as egress_router
from app.errors import install_error_handlers
from app.health.routes import router as health_router
from app.idempotency.store import IdempotencyStore
from app.migrate import ensure_at_head
from app.observability.logs import configure_logging
from app.observability.middleware import RequestObserver
from app.openapi_shape import shape
from app.proxy.factory import Signing, build_signing
from app.proxy.gateway import PROXY_ROUTE, SIGN_ROUTE, SigningGateway
from app.proxy.routes import router as proxy_router
from app.request_guard import RequestGuard
from app.settings import Settings
from app.tokens import hash_token
from app.vault.core_dumps import forbid_core_dumps
from app.vault.routes import router as vault_router
from app.vault.service import Vault

log = logging.getLogger("signvault")


def _announce_development_setup(settings: Settings, vault: Vault) -> None:
    if vault.ring is None or not vault.ring.generated:
        return
    log.warning(
        "DEVELOPMENT SETUP: no master key configured, using the generated one in %s (mode 0600). "
        "Back it up: without it the stored credentials cannot be decrypted. For production set "
        "SIGNVAULT_MASTER_KEY or SIGNVAULT_MASTER_KEY_FILE.",
        settings.dev_master_key_path.resolve(),
    )


# Net allocations that start a young collection (CPython's default is 700). With 64 requests in
# flight more young objects than that are alive at any time, so a young collection ran every ~24
# requests and scanned them all: ~6% of the worker's time in bench/. A request's objects die by
# reference count, so 10,000 is rarely reached, and cyclic garbage stays bounded all the same.
YOUNG_COLLECTION_THRESHOLD = 10_000


@functools.cache  # once per process: the first startup's heap is what lives as long as the process
def _tune_collector() -> None:
    """Modules, the app and its caches are never garbage: moved out of the collector's sight, a full
    collection scans only what requests left behind. Before this, bench/ saw twenty ~95 ms pauses
    in 10 s at 2,500 req/s; after it, ~6 ms ones."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings.log_level, settings.log_format)
    engine = create_engine(settings.resolved_database_url, timeout_s=settings.database_timeout_s)
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.readonly_sessionmaker = create_readonly_sessionmaker(engine)
    app.state.idempotency = IdempotencyStore(engine)
    # A spinning loop leaves no idle time for the audit thread that waits for it (sqlite_batches).
    app.state.audit_writer = AuditWriter(engine, app.state.sessionmaker, idle_priority=not settings.busy_poll)
    signing: Signing | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if settings.auto_migrate:
            await ensure_at_head(engine)
        forbid_core_dumps()  # before any key is unwrapped
        app.state.vault = Vault.from_settings(settings)
        await app.state.vault.check_rows_covered(app.state.sessionmaker)
        _announce_development_setup(settings, app.state.vault)
        await ensure_admin_token(settings, app.state.sessionmaker)
        signing = build_signing(settings, app.state.vault, engine, app.state.readonly_sessionmaker)
        app.state.signing, app.state.redis = signing.service, signing.redis
        signing.start()
        app.state.egress = EgressMonitor(settings, signing.http)
        app.state.invalidation = Invalidation(signing.redis, settings.redis_prefix)
        app.state.invalidation.on_change(signing.service.clients.forget)
        app.state.invalidation.on_change(signing.service.keys.clear)
        app.state.invalidation.start()
        app.state.audit_writer.start()
        tasks = start_background_checks(app)
        if settings.busy_poll:
            tasks.append(asyncio.create_task(busy_poll.spin()))
            log.info("busy polling (SIGNVAULT_BUSY_POLL): this worker keeps its core busy, with or without traffic")
        _tune_collector()
        log.info("signvault %s ready on %s", __version__, engine.url.render_as_string(hide_password=True))
        yield
    finally:
        for task in tasks:
            task.cancel()
        await app.state.audit_writer.close()
        await app.state.idempotency.close()
        if getattr(app.state, "invalidation", None) is not None:
            await app.state.invalidation.close()
        if signing is not None:
            await signing.close()
        await engine.dispose()


class AppState(SimpleNamespace):
    """The app's state (`app.state`) as ordinary attributes. Starlette's State keeps them in a dict
    behind `__getattr__`, which Python calls only after an ordinary lookup has failed and formatted
    an AttributeError: ~6k instructions a read (callgrind), and a proxied request reads three."""


class SignvaultApp(FastAPI):
    """FastAPI with the signing gateway in front of its whole middleware stack (app/proxy/gateway.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = AppState()  # type: ignore[assignment]

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        routes = {r.path: r for r in proxy_router.routes if isinstance(r, APIRoute)}
        return SigningGateway(super().build_middleware_stack(), max_body_bytes=settings.max_body_bytes,
                              proxy_route=routes[PROXY_ROUTE], sign_route=routes[SIGN_ROUTE])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An HTTP request goes straight to the gateway, as Starlette would send it: FastAPI's own
        # __call__ only asks whether its telemetry is on (it is off, see create_app) and adds a
        # coroutine to every resumption of the request. Lifespan and a root_path take its way.
        if scope["type"] == "http" and self.middleware_stack is not None and not self.root_path:
            scope["app"] = self
            await self.middleware_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    docs = settings.docs_enabled
    app = SignvaultApp(
        title="signvault",
        version=__version__,
        summary="Holds crypto-exchange API credentials and signs requests for trading bots.",
        lifespan=lifespan,
        # signvault exports Prometheus metrics of its own; FastAPI's OpenTelemetry hook looked up the
        # environment on every request (6% of the proxy's CPU in bench/) for a tracer nobody set.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.admin_token_hash = hash_token(settings.admin_token.get_secret_value()) if settings.admin_token else None
    install_error_handlers(app)
    app.add_middleware(RequestObserver)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestGuard)  # added last, so it runs first
    generate = app.openapi

    def shaped_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = shape(generate())
        return app.openapi_schema

    app.openapi = shaped_openapi  # type: ignore[method-assign]
    for router in (health_router, credentials_router, clients_router, audit_router, me_router, proxy_router,
                   egress_router, vault_router):
        app.include_router(router)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` works, without building an app (and reading env) on every import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
