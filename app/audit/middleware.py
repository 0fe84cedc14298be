"""Tags every request with an id and, once the response is out, writes its audit row."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.context import STATE_KEY, AuditContext
from app.audit.models import AuditEvent

log = logging.getLogger("signvault.audit")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


class AuditMiddleware:
    """Pure ASGI, so it costs nothing on requests that no principal authenticated."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            context: AuditContext | None = scope["state"].get(STATE_KEY)
            if context is not None:
                latency_ms = (time.perf_counter() - started) * 1000
                await _record(scope, context, request_id, status, latency_ms)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SAFE_REQUEST_ID.match(value):
            return str(value.decode())
    return None


async def _record(scope: Scope, context: AuditContext, request_id: str, status: int, latency_ms: float) -> None:
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(scope["app"].state, "sessionmaker", None)
    if sessionmaker is None:
        return
    endpoint: Any = scope.get("endpoint")
    event = AuditEvent(
        request_id=request_id,
        actor_kind=context.actor_kind,
        actor=context.actor,
        action=context.action or getattr(endpoint, "__name__", "unknown"),
        method=scope["method"],
        path=scope["path"][:512],
        status=status,
        latency_ms=round(latency_ms, 3),
        credential_id=context.credential_id,
        credential_label=context.credential_label,
        credential_version=context.credential_version,
        exchange=context.exchange,
    )
    try:
        async with sessionmaker() as session, session.begin():
            session.add(event)
    except Exception as exc:  # the response is already out; losing the row must not crash the worker
        log.error("audit row not written for request %s: %s", request_id, type(exc).__name__)
