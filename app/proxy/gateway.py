"""Serves `/proxy/{exchange}/{path}` and `POST /sign` straight from ASGI, ahead of FastAPI's routing,
dependency injection and response validation, which cost more CPU per request than signing and
forwarding together (bench/).

Only the framework is skipped: the request passes the same guards as every route (control
characters, body cap, request id, metrics, access line, audit row), called here directly rather
than as three ASGI layers of wrapped `receive` and `send`, the same token check and the same
signing pipeline. Everything else, these paths with other methods included, goes to FastAPI,
where the documented routes live.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from app.audit.context import AuditContext, start_audit
from app.body_limit import declares_over, refuse_too_large
from app.clients.grants import SigningClient
from app.errors import (
    PROBLEM_JSON,
    InvalidInput,
    ProblemError,
    answered,
    invalid_input,
    problem_bytes,
    problem_for,
)
from app.exchanges.base import UpstreamRequest
from app.idempotency.store import IdempotencyStore, StoredAnswer, check_key, fingerprint, problem_answer
from app.observability.middleware import REQUEST_ID_HEADER, Observation
from app.proxy import pacing
from app.proxy.caller import Caller, ClientGone
from app.proxy.paths import exchange_path, exchange_query
from app.proxy.schemas import SignedRequest, SignRequest
from app.proxy.service import Prepared, SigningService, adapter_for, granted, may_have_sent
from app.proxy.upstream import ExchangeNotSent, ExchangeOutcomeUnknown, ExchangeResponse, target_url
from app.request_guard import has_control, refuse_control

PROXY_ROUTE = "/proxy/{exchange}/{path:path}"
SIGN_ROUTE = "/sign"
PROXY_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
CREDENTIAL_HEADER = "X-Signvault-Credential"
CREDENTIAL_MAX = 100
_PROXY_PATH = re.compile(r"^/proxy/([^/]+)/")  # as FastAPI matches PROXY_ROUTE: a non-empty exchange
_NO_BODY_STATUSES = frozenset({204, 304})

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # header names lowercased, as uvicorn writes them
Handler = Callable[[Scope, Receive, dict[str, str]], Awaitable[Answer]]
_JSON = [(b"content-type", b"application/json")]
_PROBLEM = (b"content-type", PROBLEM_JSON.encode())
_REPLAYED = (b"idempotent-replayed", b"true")
log = logging.getLogger("signvault.proxy")


class BodyTooLarge(ProblemError):
    status, slug, title = 413, "body-too-large", "The request body is too large"


class SigningGateway:
    """The outermost ASGI app: `/proxy` and `/sign` requests to the pipeline, the rest to `app`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, proxy_route: Any, sign_route: Any) -> None:
        self.app = app
        # FastAPI's documented routes: their paths label metrics, as when FastAPI routes a request.
        self.proxy_route, self.sign_route = proxy_route, sign_route
        self.proxy = _served(proxy_answer, max_body_bytes)
        self.sign = _served(sign_answer, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _route_path(scope)
            matched = _PROXY_PATH.match(path) if scope["method"] in PROXY_METHODS else None
            if matched:
                scope["route"], scope["path_params"] = self.proxy_route, {"exchange": matched.group(1)}
                await self.proxy(scope, receive, send)
                return
            if path == SIGN_ROUTE and scope["method"] == "POST":
                scope["route"] = self.sign_route
                await self.sign(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _served(handler: Handler, max_body_bytes: int) -> ASGIApp:
    """`handler`'s answer sent; failures as problem+json, as FastAPI's own handlers answer them.
    Guarded and observed in the order main.py stacks the middlewares for every other route:
    control characters, then the declared body size (both refused unobserved), then the observed
    request. A body sent without a declared size is counted as it is read (_read_body)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if has_control(scope):
            await refuse_control(send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if declares_over(headers.get("content-length", ""), max_body_bytes):
            await refuse_too_large(send, max_body_bytes)
            return
        seen, status = Observation(scope), 500  # 500 unless it answers: as RequestObserver counts
        try:
            try:
                status, answer_headers, body = await handler(scope, receive, headers)
            except ProblemError as exc:
                status, answer_headers, body = _problem(exc.status, answered(exc), exc.headers)
            except ClientGone:
                status = 499  # as nginx counts a client that hung up: no answer is sent
                return
            except Exception as exc:  # a problem, never the exception's text (errors.problem_for)
                problem = problem_for(exc)
                status, answer_headers, body = _problem(problem.status, problem.to_problem(), problem.headers)
            await respond(send, status, answer_headers, body, seen.request_id)
        finally:
            seen.finish(status)

    return app


class _Call(NamedTuple):
    """An authenticated call to the gateway, its audit row started."""

    state: Any  # the app's state
    service: SigningService
    headers: dict[str, str]
    client: SigningClient
    audit: AuditContext


async def _authenticated(scope: Scope, headers: dict[str, str], action: str) -> _Call:
    state = scope["app"].state
    client = await state.signing.clients.by_token(headers.get("x-signvault-token"))
    audit = start_audit(scope, "client", client.name)
    audit.action = action
    return _Call(state, state.signing, headers, client, audit)


async def proxy_answer(scope: Scope, receive: Receive, headers: dict[str, str]) -> Answer:
    """Authenticate, strip and sign, then forward (once, with an Idempotency-Key)."""
    call = await _authenticated(scope, headers, "proxy")
    state, service, headers, client, audit = call.state, call.service, call.headers, call.client, call.audit
    credential = headers.get("x-signvault-credential")
    if credential is not None and len(credential) > CREDENTIAL_MAX:
        raise InvalidInput.field(CREDENTIAL_HEADER, f"String should have at most {CREDENTIAL_MAX} characters")
    adapter = adapter_for(scope["path_params"]["exchange"])
    audit.exchange = adapter.id  # named in the audit row even when the request is refused
    # The raw path, as the client encoded it: the decoded path would turn %2f into a slash.
    raw = scope.get("raw_path", b"").decode("latin-1")
    upstream = UpstreamRequest(
        method=scope["method"],
        # Everything after /proxy/{exchange}, its leading slash included, so "//host" shows as an empty segment.
        path=exchange_path("/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else ""),
        query=exchange_query(scope.get("query_string", b"")),
        body=await _read_body(receive, service.settings.max_body_bytes),
        headers=headers,
    )
    prepared = await service.prepare(client, adapter, upstream, credential)
    if prepared.credential is not None:
        audit.about(prepared.credential)
    key = headers.get("idempotency-key")
    caller = Caller(receive)
    try:
        if key is None:
            answer = await service.forward(prepared, caller)
            return answer.status, answer.headers, answer.body
        return await _forward_once(state.idempotency, service, prepared, client, check_key(key), credential, caller)
    finally:
        caller.close()


async def sign_answer(scope: Scope, receive: Receive, headers: dict[str, str]) -> Answer:
    """What to send (URL, headers, body), signed; the caller sends it, so it spends the same budget."""
    call = await _authenticated(scope, headers, "sign")
    service, headers, client, audit = call.service, call.headers, call.client, call.audit
    raw = await _read_body(receive, service.settings.max_body_bytes)
    body = _sign_request(raw, headers.get("content-type"))
    named = granted(client, body.credential)
    adapter = adapter_for(named.exchange)
    audit.about(named)
    upstream = UpstreamRequest(
        method=body.method, path=exchange_path(body.path), query=exchange_query(body.query.encode()),
        body=body.body.encode(), headers={"content-type": body.content_type} if body.content_type else {},
    )
    prepared = await service.prepare(client, adapter, upstream, named.id, always_sign=True)
    # Counted, but not in flight: its answer goes to the caller, never here.
    pacing.answered(service.limiter, await pacing.admit(service.limiter, prepared))
    signed = await service.sign(prepared)
    answer = SignedRequest(method=signed.method, url=target_url(prepared.origin, signed),
                           headers=dict(signed.headers), body=signed.body.decode("utf-8"))
    return 200, _JSON, answer.model_dump_json().encode()


def _sign_request(raw: bytes, content_type: str | None) -> SignRequest:
    """The JSON body, read as FastAPI reads a model body, and refused in the same 422 shape."""
    media = (content_type or "application/json").partition(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise InvalidInput.field("body", "a JSON object is expected (Content-Type: application/json)")
    if not raw:
        raise InvalidInput.field("body", "Field required")
    try:
        return SignRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_input(exc.errors(include_input=False), tuple(SignRequest.model_fields)) from None


async def _forward_once(store: IdempotencyStore, service: SigningService, prepared: Prepared, client: SigningClient,
                        key: str, credential: str | None, caller: Caller) -> Answer:
    """Idempotency-Key: the first request goes out; the same one again gets the stored answer."""
    up = prepared.request
    print_ = fingerprint(up.method, prepared.adapter.id, up.path, up.query, credential or "",
                         prepared.adapter.request_content(up))
    stored = await store.claim(client.id, key, print_)
    if stored is not None:
        return stored.status, [*stored.headers, _REPLAYED], stored.body
    began = may_have_sent.set(False)
    try:
        answer: ExchangeResponse = await service.forward(prepared, caller)
    except ProblemError as exc:
        if may_have_sent.get() and exc.status in (502, 504) and not isinstance(exc, ExchangeNotSent):
            await _store_answer(store, client, key, problem_answer(exc))  # it went out, outcome unknown: never again
        else:  # refused, or failed (a clock sync, a connection) before any byte went out: free for a retry
            await _release(store, client, key)
        raise
    except BaseException:
        # Cancelled (a worker stopping) or failed otherwise (a database error while it waited for its
        # turn on a key, say). Once its send began, it may have reached the exchange, so its key must
        # never let a retry out; before that, it is free. Shielded: in a cancelled task the next
        # await would be cancelled too. If even this fails, the key stays in flight (409) until it expires.
        if may_have_sent.get():
            await _settle(_store_answer(store, client, key, problem_answer(_interrupted(prepared))))
        else:
            await _settle(_release(store, client, key))
        raise
    finally:
        may_have_sent.reset(began)
    await _store_answer(store, client, key, StoredAnswer(answer.status, answer.headers, answer.body))
    return answer.status, answer.headers, answer.body


_SETTLING: set[asyncio.Future[None]] = set()  # asyncio keeps only weak references to running tasks


async def _settle(work: Coroutine[Any, Any, None]) -> None:
    """`work` run to its end even if this task is cancelled meanwhile."""
    task = asyncio.ensure_future(work)
    _SETTLING.add(task)
    task.add_done_callback(_SETTLING.discard)
    await asyncio.shield(task)


async def _release(store: IdempotencyStore, client: SigningClient, key: str) -> None:
    try:
        await store.release(client.id, key)
    except Exception as exc:
        log.error("an Idempotency-Key could not be released (%s); it stays in flight until it expires",
                  type(exc).__name__)


def _interrupted(prepared: Prepared) -> ExchangeOutcomeUnknown:
    return ExchangeOutcomeUnknown(
        f"The request to {prepared.adapter.spec.name} was interrupted after it may have been sent: the order may "
        "or may not have been placed. Check its status before sending it again.")


async def _store_answer(store: IdempotencyStore, client: SigningClient, key: str, answer: StoredAnswer) -> None:
    """The exchange has answered, so the bot hears that answer even if the database cannot keep it.
    The key then stays in flight until it expires: a retry gets 409, never a second order."""
    try:
        await store.complete(client.id, key, answer)
    except Exception as exc:
        log.error("an Idempotency-Key's answer could not be stored (%s); the key stays in flight",
                  type(exc).__name__)


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused once it passes `limit`: a declared size over it was refused before."""
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
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()] if headers else []
    return status, [_PROBLEM, *extra], problem_bytes(problem)


async def respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                  request_id: str) -> None:
    # The server writes a Date of its own (uvicorn always does), and HTTP allows the field once: the
    # exchange's goes. Crypto.com's clock has already been read from it (SigningService._send).
    raw = [header for header in headers if header[0] != b"date"]
    if status >= 200 and status not in _NO_BODY_STATUSES:
        raw.append((b"content-length", b"%d" % len(body)))
    raw.append((REQUEST_ID_HEADER, request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _route_path(scope: Scope) -> str:
    """The path below the app's root path, as Starlette routes it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
