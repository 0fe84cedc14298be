"""The signing routes as clients see them: `/proxy/{exchange}/{path}` (forward and sign), `/sign`
(return what to send) and `/sign/ws-login`. The first two are documented here and served by
SigningGateway ahead of routing (app/proxy/gateway.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from app.audit.context import audit_of
from app.clients.auth import SigningClientDep
from app.errors import problem_responses
from app.proxy.gateway import CREDENTIAL_HEADER, CREDENTIAL_MAX, PROXY_METHODS, PROXY_ROUTE, SIGN_ROUTE
from app.proxy.schemas import SignedRequest, SignRequest, WsLogin, WsLoginRequest
from app.proxy.service import SigningService, granted

router = APIRouter(tags=["signing"], responses=problem_responses(400, 401, 403, 404, 413, 422))

CredentialHeader = Annotated[
    str | None,
    Header(alias=CREDENTIAL_HEADER, max_length=CREDENTIAL_MAX,
           description="Credential id, label or exchange:label; optional when the client holds one."),
]


def _service(request: Request) -> SigningService:
    service: SigningService = request.app.state.signing
    return service


async def proxy(exchange: str, path: str, client: SigningClientDep, credential: CredentialHeader = None) -> Response:
    """Forward a request to the exchange, signed with the credential's key.

    Point an exchange client's base URL at `/proxy/{exchange}` and keep placeholder keys: whatever
    authentication it attaches is removed and the request is signed afresh. The exchange's status,
    body and headers (rate-limit headers included) come back as they are.
    """
    # This route documents /proxy for OpenAPI; SigningGateway serves those requests before routing.
    raise RuntimeError("/proxy is served by SigningGateway, ahead of FastAPI's routing")


# JSON, as most exchanges take; a form body (Binance, Kraken) is sent as given too.
_BODY = {"requestBody": {"required": False, "description": "Sent to the exchange as given (then signed).",
                         "content": {"application/json": {"schema": {}}}}}
for _method in PROXY_METHODS:
    router.add_api_route(
        PROXY_ROUTE, proxy, methods=[_method], operation_id=f"proxy_{_method.lower()}",
        responses=problem_responses(409, 429, 502, 503, 504),
        openapi_extra=_BODY if _method in ("POST", "PUT", "PATCH") else None)


@router.post(SIGN_ROUTE, operation_id="sign_request", responses=problem_responses(429, 503))
async def sign_request(body: SignRequest, client: SigningClientDep) -> SignedRequest:
    """Return exactly what to send (URL, headers, body) for callers that send the request themselves."""
    # This route documents /sign for OpenAPI; SigningGateway serves those requests before routing.
    raise RuntimeError("/sign is served by SigningGateway, ahead of FastAPI's routing")


@router.post("/sign/ws-login", operation_id="sign_ws_login", responses=problem_responses(503))
async def sign_ws_login(body: WsLoginRequest, request: Request, client: SigningClientDep) -> WsLogin:
    """The signed WebSocket login message (OKX, Bybit, Bitget, Crypto.com, Gate, Binance Ed25519)."""
    credential = granted(client, body.credential)
    context = audit_of(request.scope)
    if context is not None:
        context.action = "sign_ws_login"
        context.about(credential)
    options = {k: v for k, v in body.model_dump(exclude={"credential"}).items() if v is not None}
    message = await _service(request).ws_login(client, credential, options)
    return WsLogin(exchange=credential.exchange, message=message)
