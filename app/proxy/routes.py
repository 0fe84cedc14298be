"""`/proxy/{exchange}/{path}` (forward and sign) and `/sign` (return what to send)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from app.audit.context import audit_of
from app.clients.auth import SigningClientDep
from app.clients.models import Client
from app.credentials.models import Credential
from app.errors import ProblemError, problem_responses
from app.exchanges.base import UpstreamRequest
from app.idempotency.store import IdempotencyStore, StoredAnswer, check_key, fingerprint, problem_answer
from app.proxy import pacing
from app.proxy.paths import exchange_path, exchange_query
from app.proxy.schemas import SignedRequest, SignRequest, WsLogin, WsLoginRequest
from app.proxy.service import CredentialNotGranted, Prepared, SigningService, adapter_for
from app.proxy.upstream import url_for

router = APIRouter(tags=["signing"], responses=problem_responses(400, 401, 403, 404, 413, 422))

CREDENTIAL_HEADER = "X-Signvault-Credential"
CredentialHeader = Annotated[
    str | None,
    Header(alias=CREDENTIAL_HEADER, max_length=100,
           description="Credential id, label or exchange:label; optional when the client holds one."),
]


class BodyTooLarge(ProblemError):
    status, slug, title = 413, "body-too-large", "The request body is too large"


def _service(request: Request) -> SigningService:
    service: SigningService = request.app.state.signing
    return service


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"at most {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _note(request: Request, action: str, prepared: Prepared) -> None:
    context = audit_of(request)
    if context is None:
        return
    context.action = action
    context.exchange = prepared.adapter.id
    if prepared.credential is not None:
        context.about(prepared.credential)


async def proxy(exchange: str, path: str, request: Request, client: SigningClientDep,
                credential: CredentialHeader = None) -> Response:
    """Forward a request to the exchange, signed with the credential's key.

    Point an exchange client's base URL at `/proxy/{exchange}` and keep placeholder keys: whatever
    authentication it attaches is removed and the request is signed afresh. The exchange's status,
    body and headers (rate-limit headers included) come back as they are.
    """
    service = _service(request)
    adapter = adapter_for(exchange)
    # The raw path, as the client encoded it: the decoded `path` would turn %2f into a slash.
    raw = request.scope.get("raw_path", b"").decode("latin-1")
    upstream = UpstreamRequest(
        method=request.method,
        # Everything after /proxy/{exchange}, its leading slash included, so "//host" shows as an empty segment.
        path=exchange_path("/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else ""),
        query=exchange_query(request.scope.get("query_string", b"")),
        body=await _read_body(request, service.settings.max_body_bytes),
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    prepared = await service.prepare(client, adapter, upstream, credential)
    _note(request, "proxy", prepared)
    key = request.headers.get("idempotency-key")
    if key is None:
        answer = await service.forward(prepared)
        return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))
    return await _forward_once(request, service, prepared, client.id, check_key(key), credential)


async def _forward_once(request: Request, service: SigningService, prepared: Prepared, client_id: str, key: str,
                        credential: str | None) -> Response:
    """Idempotency-Key: the first request goes out; the same one again gets the stored answer."""
    store: IdempotencyStore = request.app.state.idempotency
    up = prepared.request
    print_ = fingerprint(up.method, prepared.adapter.id, up.path, up.query, credential or "", up.body)
    stored = await store.claim(client_id, key, print_)
    if stored is not None:
        return Response(stored.body, status_code=stored.status,
                        headers={**dict(stored.headers), "Idempotent-Replayed": "true"})
    try:
        answer = await service.forward(prepared)
    except ProblemError as exc:
        if exc.status in (502, 504):  # it went out and its outcome is unknown: never send it again
            await store.complete(client_id, key, problem_answer(exc))
        else:  # refused before sending (limits, cooldowns): the key is free for a retry
            await store.release(client_id, key)
        raise
    except BaseException:
        await store.release(client_id, key)
        raise
    await store.complete(client_id, key, StoredAnswer(answer.status, answer.headers, answer.body))
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


# JSON, as most exchanges take; a form body (Binance, Kraken) is sent as given too.
_BODY = {"requestBody": {"required": False, "description": "Sent to the exchange as given (then signed).",
                         "content": {"application/json": {"schema": {}}}}}
for _method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
    router.add_api_route(
        "/proxy/{exchange}/{path:path}", proxy, methods=[_method], operation_id=f"proxy_{_method.lower()}",
        responses=problem_responses(409, 429, 502, 503, 504),
        openapi_extra=_BODY if _method in ("POST", "PUT", "PATCH") else None)


def _granted(client: Client, ref: str) -> Credential:
    named = next((c for c in client.credentials if ref in (c.id, c.label, f"{c.exchange}:{c.label}")), None)
    if named is None:
        raise CredentialNotGranted(f"no credential '{ref}' is granted to this client")
    return named


@router.post("/sign", operation_id="sign_request", responses=problem_responses(429, 503))
async def sign_request(body: SignRequest, request: Request, client: SigningClientDep) -> SignedRequest:
    """Return exactly what to send (URL, headers, body) for callers that send the request themselves."""
    service = _service(request)
    named = _granted(client, body.credential)
    adapter = adapter_for(named.exchange)
    headers = {"content-type": body.content_type} if body.content_type else {}
    upstream = UpstreamRequest(
        method=body.method, path=exchange_path(body.path), query=exchange_query(body.query.encode()),
        body=body.body.encode(), headers=headers,
    )
    prepared = await service.prepare(client, adapter, upstream, named.id, always_sign=True)
    _note(request, "sign", prepared)
    await pacing.admit(service.limiter, prepared)  # the caller will send it: it spends the same budget
    signed = await service.sign(prepared)
    return SignedRequest(method=signed.method, url=str(url_for(prepared.origin, signed)),
                         headers=dict(signed.headers), body=signed.body.decode("utf-8"))


@router.post("/sign/ws-login", operation_id="sign_ws_login", responses=problem_responses(503))
async def sign_ws_login(body: WsLoginRequest, request: Request, client: SigningClientDep) -> WsLogin:
    """The signed WebSocket login message (OKX, Bybit, Bitget, Crypto.com, Gate, Binance Ed25519)."""
    credential = _granted(client, body.credential)
    context = audit_of(request)
    if context is not None:
        context.action = "sign_ws_login"
        context.about(credential)
    options = {k: v for k, v in body.model_dump(exclude={"credential"}).items() if v is not None}
    message = await _service(request).ws_login(client, credential, options)
    return WsLogin(exchange=credential.exchange, message=message)
