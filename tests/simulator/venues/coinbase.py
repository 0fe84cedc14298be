"""Coinbase Advanced Trade (CDP keys): reference section 3.

Authorization: Bearer <JWT>, ES256 (raw r||s, 64 bytes, base64url) for an ECDSA P-256 key or EdDSA
for an Ed25519 key. Header: alg, kid = key name, nonce. Claims: sub = key name, iss = "cdp",
nbf <= now < exp (exp - nbf <= 120), uri = "METHOD host/path" with the Host the request carried and
no scheme or query.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .. import keys
from ..core import Endpoint, Reject, SimRequest, SimResponse, Venue, json_response, lookup, single_header
from ..state import (
    BAD_REQUEST,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    IP_NOT_WHITELISTED,
    MISSING_AUTH,
    UNKNOWN_KEY,
    Account,
)

MAX_LIFETIME_S = 120


def unauthorized(error: str = "invalid_token", message: str = "Unauthorized") -> SimResponse:
    return json_response(401, {"error": error, "error_details": message, "message": message})


def b64url_decode(part: str) -> bytes | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        return None
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None


class Coinbase(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/api/v3/brokerage/time", "public", self.time),
            Endpoint("GET", "/api/v3/brokerage/accounts", "read", self.accounts),
            Endpoint("POST", "/api/v3/brokerage/orders", "trade", self.order),
            Endpoint("GET", "/api/v3/brokerage/key_permissions", "keyinfo", self.key_permissions),
            Endpoint("POST", r"/v2/accounts/(?P<account_id>[^/]+)/transactions", "withdraw", self.send),
            Endpoint("POST", r"/v2/accounts/(?P<account_id>[^/]+)/withdrawals", "withdraw", self.send),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return json_response(404, {"error": "NOT_FOUND", "message": "Not Found"})

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return json_response(
            403,
            {
                "error": "PERMISSION_DENIED",
                "error_details": "Missing required scopes",
                "message": "Missing required scopes",
            },
        )

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        auth = single_header(req, "Authorization", unauthorized())
        if not auth.startswith("Bearer "):
            raise Reject(MISSING_AUTH, unauthorized(), "Authorization: Bearer missing")
        token = auth[len("Bearer ") :]
        parts = token.split(".")
        if len(parts) != 3:
            raise Reject(BAD_REQUEST, unauthorized(), "not a compact JWS")
        raw_header, raw_claims, raw_sig = (b64url_decode(p) for p in parts)
        try:
            header = json.loads(raw_header) if raw_header is not None else None
            claims = json.loads(raw_claims) if raw_claims is not None else None
        except ValueError:
            header = claims = None
        if not isinstance(header, dict) or not isinstance(claims, dict) or raw_sig is None:
            raise Reject(BAD_REQUEST, unauthorized(), "undecodable JWT")

        kid = header.get("kid")
        account = lookup(req, kid if isinstance(kid, str) else None)
        if account is None:
            raise Reject(UNKNOWN_KEY, unauthorized(), f"kid {kid!r}")
        if not account.ip_allowed(req.client_ip):
            raise Reject(IP_NOT_WHITELISTED, unauthorized(), req.client_ip)

        if not isinstance(header.get("nonce"), str) or not header["nonce"]:
            raise Reject(BAD_REQUEST, unauthorized(), "header nonce missing")
        nbf, exp = claims.get("nbf"), claims.get("exp")
        if not _is_number(nbf) or not _is_number(exp):
            raise Reject(BAD_TIMESTAMP, unauthorized(), "nbf/exp missing")
        now = req.now_ms / 1000.0
        if now < nbf:
            raise Reject(
                BAD_TIMESTAMP, unauthorized("invalid_token", "token not valid yet"), f"nbf {nbf} now {now:.3f}"
            )
        if now >= exp:
            raise Reject(BAD_TIMESTAMP, unauthorized("expired_token", "token expired"), f"exp {exp} now {now:.3f}")
        if exp - nbf > MAX_LIFETIME_S:
            raise Reject(BAD_TIMESTAMP, unauthorized(), f"lifetime {exp - nbf}s > {MAX_LIFETIME_S}s")

        # Time window, then the signature, then the claims the signature vouches for.
        signing_input = (parts[0] + "." + parts[1]).encode()
        self._verify_signature(account, header, signing_input, raw_sig)

        if claims.get("sub") != kid:
            raise Reject(BAD_SIGNATURE, unauthorized(), f"sub {claims.get('sub')!r} != kid {kid!r}")
        if claims.get("iss") != "cdp":
            raise Reject(BAD_SIGNATURE, unauthorized(), f"iss {claims.get('iss')!r}")
        host = req.header("host") or ""
        allowed_uris = {f"{req.method} {host}{req.full_path}", f"{req.method} {host}{req.path}"}
        if claims.get("uri") not in allowed_uris:
            raise Reject(BAD_SIGNATURE, unauthorized(), f"uri {claims.get('uri')!r} not in {sorted(allowed_uris)}")
        return account

    def _verify_signature(self, account: Account, header: dict[str, Any], signing_input: bytes, sig: bytes) -> None:
        alg = header.get("alg")
        try:
            if account.key_type == "ecdsa" and alg == "ES256":
                public = keys.public_key(account.secret, "ecdsa")
                if not isinstance(public.curve, ec.SECP256R1) or len(sig) != 64:
                    raise InvalidSignature  # DER signatures (70-72 bytes) are the classic bug
                der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            elif account.key_type == "ed25519" and alg == "EdDSA":
                public = keys.public_key(account.secret, "ed25519")
                assert isinstance(public, ed25519.Ed25519PublicKey)
                public.verify(sig, signing_input)
            else:
                raise InvalidSignature
        except (InvalidSignature, ValueError):
            raise Reject(BAD_SIGNATURE, unauthorized(), f"alg {alg!r} key {account.key_type}") from None

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        now = req.config.now()
        iso = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json_response(200, {"iso": iso, "epochSeconds": str(int(now)), "epochMillis": str(int(now * 1000))})

    def accounts(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(
            200,
            {
                "accounts": [
                    {
                        "uuid": "8bfc20d7-f7c6-4422-bf07-8243ca4169fe",
                        "name": "USDC Wallet",
                        "currency": "USDC",
                        "available_balance": {"value": "1000.00", "currency": "USDC"},
                        "default": True,
                        "active": True,
                        "type": "ACCOUNT_TYPE_CRYPTO",
                        "ready": True,
                        "hold": {"value": "0", "currency": "USDC"},
                    }
                ],
                "has_next": False,
                "cursor": "",
                "size": 1,
            },
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return json_response(
            200,
            {
                "success": True,
                "success_response": {
                    "order_id": str(uuid.uuid4()),
                    "product_id": body.get("product_id", "BTC-USD"),
                    "side": body.get("side", "BUY"),
                    "client_order_id": body.get("client_order_id", ""),
                },
                "order_configuration": body.get("order_configuration", {}),
            },
        )

    def key_permissions(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        return json_response(
            200,
            {
                "can_view": True,
                "can_trade": account.can_trade,
                "can_transfer": account.can_withdraw,
                "portfolio_uuid": "b87a2d3f-8a1e-49b3-a4ea-402d8c389aca",
                "portfolio_type": "DEFAULT",
            },
        )

    def send(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return json_response(
            201,
            {
                "data": {
                    "id": str(uuid.uuid4()),
                    "type": body.get("type", "send"),
                    "status": "pending",
                    "amount": {"amount": body.get("amount", "0"), "currency": body.get("currency", "BTC")},
                }
            },
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
