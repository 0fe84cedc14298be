"""One pass around every request: id, timing, then audit row, metrics and one access line."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.audit.context import audit_of
from app.audit.recorder import record

access_log = logging.getLogger("signvault.access")

REQUEST_ID_HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")

# Request ids: a random prefix per process and a counter, unique without a uuid4 per request.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)

# Time spent waiting for exchanges during this request (set by the signing service, read here).
upstream_ms: ContextVar[float] = ContextVar("upstream_ms", default=0.0)


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = Observation(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, seen.request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seen.finish(status)


class Observation:
    """One request seen from start to finish: its id, then its audit row, metrics and access line.
    RequestObserver wraps every FastAPI route in it; the signing gateway uses it directly."""

    __slots__ = ("_started", "_token", "request_id", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.request_id = _incoming_request_id(scope) or f"{_ID_PREFIX}{next(_ID_COUNTER):020x}"  # 32 hex
        scope.setdefault("state", {})["request_id"] = self.request_id
        self._started = time.perf_counter()
        self._token = upstream_ms.set(0.0)

    def finish(self, status: int) -> None:
        """Count, time, log and audit the request, answered with `status` (500 if it never answered)."""
        scope = self.scope
        latency = time.perf_counter() - self._started
        waited = upstream_ms.get()
        upstream_ms.reset(self._token)
        context = audit_of(scope)
        count, timing = _series(getattr(scope.get("route"), "path", "unmatched"), scope["method"], status // 100)
        count.inc()
        timing.observe(latency)
        if access_log.isEnabledFor(logging.INFO):  # the line's fields cost something to gather
            access_log.info("request", extra={
                "request_id": self.request_id, "method": scope["method"], "path": scope["path"][:256],
                "status": status, "latency_ms": round(latency * 1000, 3),
                "upstream_ms": round(waited, 3) if waited else None,
                "actor": context.actor if context else None,
                "credential": context.credential_label if context else None,
                "exchange": context.exchange if context else None,
            })
        if context is not None:
            record(scope["app"], scope, context, self.request_id, status, latency * 1000)


@lru_cache(maxsize=1024)
def _series(route: str, method: str, status_class: int) -> tuple[Any, Any]:
    """The request counter and latency histogram for these labels, looked up once. Methods outside
    HTTP's usual ones count as OTHER: a label never takes an arbitrary client-chosen value."""
    method = method if method in _METHODS else "OTHER"
    return (metrics.REQUESTS.labels(route, method, f"{status_class}xx"), metrics.REQUEST_LATENCY.labels(route))


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SAFE_REQUEST_ID.match(value):
            return str(value.decode())
    return None
