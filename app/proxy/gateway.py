"""Serves `/proxy/{exchange}/{path}` straight from ASGI, ahead of FastAPI's routing and dependency
injection, which cost more CPU per request than signing and forwarding together (bench/).

Only the framework is skipped: the request passes the same guards as every route (control
characters, body cap, request id, metrics, access line, audit row), the same token check and the
same signing pipeline. Everything else, `/proxy` with another method included, goes to FastAPI,
where the documented route for `/proxy` lives.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.audit.context import start_audit
from app.body_limit import BodyLimit
from app.clients.auth import signing_client
from app.clients.models import Client
from app.errors import PROBLEM_JSON, InvalidInput, ProblemError, answered, log_unexpected, problem_bytes
from app.exchanges.base import UpstreamRequest
from app.idempotency.store import IdempotencyStore, StoredAnswer, check_key, fingerprint, problem_answer
from app.observability.middleware import RequestObserver
from app.proxy.paths import exchange_path, exchange_query
from app.proxy.service import Prepared, SigningService, adapter_for
from app.proxy.upstream import ExchangeResponse
from app.request_guard import RequestGuard

PROXY_ROUTE = "/proxy/{exchange}/{path:path}"
PROXY_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
CREDENTIAL_HEADER = "X-Signvault-Credential"
CREDENTIAL_MAX = 100
_PROXY_PATH = re.compile(r"^/proxy/([^/]+)/")  # as FastAPI matches PROXY_ROUTE: a non-empty exchange
_NO_BODY_STATUSES = frozenset({204, 304})

Answer = tuple[int, list[tuple[str, str]], bytes]


class BodyTooLarge(ProblemError):
    status, slug, title = 413, "body-too-large", "The request body is too large"


class ProxyGateway:
    """The outermost ASGI app: `/proxy` requests to the pipeline below, the rest to `app`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, route: Any) -> None:
        self.app = app
        self.route = route  # FastAPI's documented route: its path labels metrics, its name the audit action
        self.guarded = RequestGuard(BodyLimit(RequestObserver(self._proxy), max_bytes=max_body_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in PROXY_METHODS and _PROXY_PATH.match(_route_path(scope)):
            scope["route"], scope["endpoint"] = self.route, self.route.endpoint
            await self.guarded(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, headers, body = await proxy_answer(scope, receive)
        except ProblemError as exc:
            status, headers, body = _problem(exc.status, answered(exc), exc.headers)
        except ClientGone:
            return
        except Exception as exc:  # answered as FastAPI's own handler would: a logged 500 problem
            log_unexpected(exc)
            status, headers, body = _problem(500, ProblemError().to_problem(), None)
        await respond(send, status, headers, body)


class ClientGone(Exception):
    """The client hung up before its body arrived: nothing to answer."""


async def proxy_answer(scope: Scope, receive: Receive) -> Answer:
    """Authenticate, strip and sign, then forward (once, with an Idempotency-Key)."""
    state = scope["app"].state
    service: SigningService = state.signing
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    client = await signing_client(state, headers.get("x-signvault-token"))
    audit = start_audit(scope, "client", client.name)
    audit.action = "proxy"
    credential = headers.get("x-signvault-credential")
    if credential is not None and len(credential) > CREDENTIAL_MAX:
        raise InvalidInput.field(CREDENTIAL_HEADER, f"String should have at most {CREDENTIAL_MAX} characters")
    exchange = _PROXY_PATH.match(_route_path(scope)).group(1)  # type: ignore[union-attr]  # matched on entry
    adapter = adapter_for(exchange)
    audit.exchange = adapter.id  # named in the audit row even when the request is refused
    # The raw path, as the client encoded it: the decoded path would turn %2f into a slash.
    raw = scope.get("raw_path", b"").decode("latin-1")
    upstream = UpstreamRequest(
        method=scope["method"],
        # Everything after /proxy/{exchange}, its leading slash included, so "//host" shows as an empty segment.
        path=exchange_path("/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else ""),
        query=exchange_query(scope.get("query_string", b"")),
        body=await _read_body(receive, headers.get("content-length"), service.settings.max_body_bytes),
        headers=headers,
    )
    prepared = await service.prepare(client, adapter, upstream, credential)
    if prepared.credential is not None:
        audit.about(prepared.credential)
    key = headers.get("idempotency-key")
    if key is None:
        answer = await service.forward(prepared)
        return answer.status, answer.headers, answer.body
    return await _forward_once(state.idempotency, service, prepared, client, check_key(key), credential)


async def _forward_once(store: IdempotencyStore, service: SigningService, prepared: Prepared, client: Client,
                        key: str, credential: str | None) -> Answer:
    """Idempotency-Key: the first request goes out; the same one again gets the stored answer."""
    up = prepared.request
    print_ = fingerprint(up.method, prepared.adapter.id, up.path, up.query, credential or "", up.body)
    stored = await store.claim(client.id, key, print_)
    if stored is not None:
        return stored.status, [*stored.headers, ("Idempotent-Replayed", "true")], stored.body
    try:
        answer: ExchangeResponse = await service.forward(prepared)
    except ProblemError as exc:
        if exc.status in (502, 504):  # it went out and its outcome is unknown: never send it again
            await store.complete(client.id, key, problem_answer(exc))
        else:  # refused before sending (limits, cooldowns): the key is free for a retry
            await store.release(client.id, key)
        raise
    except BaseException:
        await store.release(client.id, key)
        raise
    await store.complete(client.id, key, StoredAnswer(answer.status, answer.headers, answer.body))
    return answer.status, answer.headers, answer.body


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"at most {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"at most {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _problem(status: int, problem: Any, headers: dict[str, str] | None) -> Answer:
    return status, [("content-type", PROBLEM_JSON), *(headers or {}).items()], problem_bytes(problem)


async def respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(name.lower().encode("latin-1"), _header_value(value)) for name, value in headers]
    if status >= 200 and status not in _NO_BODY_STATUSES:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # decoded from UTF-8 by the upstream client: send its bytes back
        return value.encode("utf-8", "surrogateescape")


def _route_path(scope: Scope) -> str:
    """The path below the app's root path, as Starlette routes it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
