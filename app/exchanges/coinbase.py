"""Coinbase Advanced Trade: a fresh JWT per request (ES256 or EdDSA) bound to method, host and path.

https://docs.cdp.coinbase.com/coinbase-app/authentication-authorization/api-key-authentication
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from app.exchanges.base import (
    UNREADABLE,
    Access,
    Exchange,
    ExchangeSpec,
    KeyPermissions,
    Moment,
    SigningKey,
    UpstreamRequest,
)
from app.exchanges.crypto import jwt

JWT_LIFETIME_S = 120
# External sends and withdrawals go through the v2 API, which the same JWT authenticates.
WITHDRAW = re.compile(r"^/v2/accounts/[^/]+/(transactions|withdrawals)|^/api/v3/brokerage/portfolios/move_funds",
                      re.IGNORECASE)


class Coinbase(Exchange):
    spec = ExchangeSpec(
        id="coinbase", name="Coinbase Advanced Trade",
        base_urls={"live": "https://api.coinbase.com", "sandbox": "https://api-sandbox.coinbase.com"},
        key_types=("ecdsa", "ed25519"),
    )
    # ccxt signs placeholder keys the legacy way, with CB-ACCESS-* headers, beside or instead of a JWT.
    auth_headers = frozenset({"authorization", "cb-access-key", "cb-access-sign", "cb-access-timestamp",
                              "cb-access-passphrase"})
    public_prefixes = ("/api/v3/brokerage/market/", "/api/v3/brokerage/time")
    time_path = "/api/v3/brokerage/time"
    key_rate = "25/second"  # private: 30 requests per second per key

    def classify(self, request: UpstreamRequest) -> Access:
        if request.method not in self.read_methods and WITHDRAW.search(request.path):
            return "withdraw"
        return super().classify(request)

    check_path = "/api/v3/brokerage/key_permissions"
    check_errors = {"401": "invalid_key", "403": "permission_denied"}
    ambiguous_errors = {"401": "Coinbase answers 401 for a wrong key, a bad JWT, or an IP not allowed"}

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        if not isinstance(body, dict):
            return None
        return KeyPermissions(read=bool(body.get("can_view")), trade=bool(body.get("can_trade")),
                              withdraw=bool(body.get("can_transfer")))

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        now = moment.now_ms // 1000
        algorithm = "ES256" if key.key_type == "ecdsa" else "EdDSA"
        header = {"alg": algorithm, "kid": key.api_key, "nonce": secrets.token_hex(16), "typ": "JWT"}
        # The uri claim has no scheme and no query string.
        claims = {"sub": key.api_key, "iss": "cdp", "nbf": now, "exp": now + JWT_LIFETIME_S,
                  "uri": f"{request.method} {request.host}{request.path}"}
        return request.with_headers(authorization=f"Bearer {jwt(key.private_key, header, claims)}")

    def server_time_ms(self, body: Any) -> int | None:
        try:
            return int(body["epochMillis"])
        except UNREADABLE:  # the ISO time instead
            return int(datetime.fromisoformat(body["iso"].replace("Z", "+00:00")).timestamp() * 1000)


SPEC = Coinbase()
