"""`/proxy/{exchange}/{path}` (forward and sign) and `/sign` (return what to send)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from app.audit.context import audit_of
from app.clients.auth import SigningClientDep
from app.clients.models import Client
from app.credentials.models import Credential
from app.errors import problem_responses
from app.exchanges.base import UpstreamRequest
from app.proxy import pacing
from app.proxy.gateway import CREDENTIAL_HEADER, CREDENTIAL_MAX, PROXY_METHODS, PROXY_ROUTE
from app.proxy.paths import exchange_path, exchange_query
from app.proxy.schemas import SignedRequest, SignRequest, WsLogin, WsLoginRequest
from app.proxy.service import CredentialNotGranted, Prepared, SigningService, adapter_for
from app.proxy.upstream import url_for

router = APIRouter(tags=["signing"], responses=problem_responses(400, 401, 403, 404, 413, 422))

CredentialHeader = Annotated[
    str | None,
    Header(alias=CREDENTIAL_HEADER, max_length=CREDENTIAL_MAX,
           description="Credential id, label or exchange:label; optional when the client holds one."),
]


def _service(request: Request) -> SigningService:
    service: SigningService = request.app.state.signing
    return service


def _note(request: Request, action: str, prepared: Prepared) -> None:
    context = audit_of(request.scope)
    if context is None:
        return
    context.action = action
    context.exchange = prepared.adapter.id
    if prepared.credential is not None:
        context.about(prepared.credential)


async def proxy(exchange: str, path: str, client: SigningClientDep, credential: CredentialHeader = None) -> Response:
    """Forward a request to the exchange, signed with the credential's key.

    Point an exchange client's base URL at `/proxy/{exchange}` and keep placeholder keys: whatever
    authentication it attaches is removed and the request is signed afresh. The exchange's status,
    body and headers (rate-limit headers included) come back as they are.
    """
    # This route documents /proxy for OpenAPI; ProxyGateway serves those requests before routing.
    raise RuntimeError("/proxy is served by ProxyGateway, ahead of FastAPI's routing")


# JSON, as most exchanges take; a form body (Binance, Kraken) is sent as given too.
_BODY = {"requestBody": {"required": False, "description": "Sent to the exchange as given (then signed).",
                         "content": {"application/json": {"schema": {}}}}}
for _method in PROXY_METHODS:
    router.add_api_route(
        PROXY_ROUTE, proxy, methods=[_method], operation_id=f"proxy_{_method.lower()}",
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
    context = audit_of(request.scope)
    if context is not None:
        context.action = "sign_ws_login"
        context.about(credential)
    options = {k: v for k, v in body.model_dump(exclude={"credential"}).items() if v is not None}
    message = await _service(request).ws_login(client, credential, options)
    return WsLogin(exchange=credential.exchange, message=message)
