"""Gate APIv4: reference section 10.

SIGN = hex(HMAC-SHA512(secret, METHOD\\nPATH\\nQUERY\\nhex(SHA512(body))\\nTimestamp)), with PATH
including /api/v4 and QUERY the raw query; Timestamp header in seconds (decimals allowed) within 60 s.
"""

from __future__ import annotations

import hashlib
import re

from ..core import (
    Endpoint,
    Reject,
    SimRequest,
    SimResponse,
    Venue,
    consteq,
    hmac_digest,
    json_response,
    lookup,
    rand_int,
    require_key_type,
    single_header,
)
from ..state import (
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    IP_NOT_WHITELISTED,
    UNKNOWN_KEY,
    Account,
)

WINDOW_S = 60.0
TIMESTAMP = re.compile(r"\d+(\.\d+)?")


def error(status: int, label: str, message: str) -> SimResponse:
    return json_response(status, {"label": label, "message": message})


class Gate(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/api/v4/spot/time", "public", self.time),
            Endpoint("GET", "/api/v4/spot/accounts", "read", self.accounts),
            Endpoint("POST", "/api/v4/spot/orders", "trade", self.order),
            Endpoint("GET", "/api/v4/account/detail", "keyinfo", self.detail),
            Endpoint("POST", "/api/v4/withdrawals", "withdraw", self.withdraw),
            # Futures orders, so the published signing examples (reference section 19, #7 and #8) can be
            # replayed byte for byte: /futures/orders as in the docs, and the real /futures/{settle}/orders.
            Endpoint("GET", "/api/v4/futures/orders", "read", self.futures_orders),
            Endpoint("POST", "/api/v4/futures/orders", "trade", self.futures_order),
            Endpoint("GET", r"/api/v4/futures/(?P<settle>usdt|btc)/orders", "read", self.futures_orders),
            Endpoint("POST", r"/api/v4/futures/(?P<settle>usdt|btc)/orders", "trade", self.futures_order),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return error(404, "NOT_FOUND", "Not Found")

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        if endpoint.kind == "trade":
            return error(403, "READ_ONLY", "API key is read-only")
        return error(403, "FORBIDDEN", "API key has no permission for this operation")

    def extra_headers(self, req: SimRequest) -> dict[str, str]:
        return {
            "X-Gate-RateLimit-Requests-Remain": "199",
            "X-Gate-RateLimit-Limit": "200",
            "X-Gate-RateLimit-Reset-Timestamp": str(int(req.config.now()) + 10),
        }

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        values: dict[str, str] = {}
        for name in ("KEY", "Timestamp", "SIGN"):
            refusal = error(401, "MISSING_REQUIRED_HEADER", f"Missing required header: {name}")
            values[name] = single_header(req, name, refusal)
        account = lookup(req, values["KEY"])
        if account is None:
            raise Reject(UNKNOWN_KEY, error(401, "INVALID_KEY", "Invalid key provided"))
        if not account.ip_allowed(req.client_ip):
            raise Reject(
                IP_NOT_WHITELISTED,
                error(403, "IP_FORBIDDEN", f"Request IP {req.client_ip} not in whitelist"),
                req.client_ip,
            )
        require_key_type(account, ("hmac",), error(401, "INVALID_KEY", "Invalid key provided"))
        ts = values["Timestamp"]
        if not TIMESTAMP.fullmatch(ts) or abs(req.now_ms / 1000.0 - float(ts)) > WINDOW_S:
            raise Reject(
                BAD_TIMESTAMP,
                error(401, "REQUEST_EXPIRED", "gap between request Timestamp and server time exceeds 60"),
                f"{ts}",
            )
        message = "\n".join([req.method, req.path, req.query, hashlib.sha512(req.body).hexdigest(), ts])
        expected = hmac_digest(account.secret.encode(), message.encode(), "sha512").hex()
        if not consteq(expected, values["SIGN"]):
            raise Reject(BAD_SIGNATURE, error(401, "INVALID_SIGNATURE", "Signature mismatch"), f"message {message!r}")
        return account

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(200, {"server_time": req.config.now_ms()})

    def accounts(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(
            200,
            [
                {"currency": "USDT", "available": "1000", "locked": "0", "update_id": 1},
                {"currency": "BTC", "available": "0.5", "locked": "0", "update_id": 1},
            ],
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        now = req.config.now()
        return json_response(
            201,
            {
                "id": str(rand_int(10**10, 10**11)),
                "text": body.get("text", "api"),
                "create_time": str(int(now)),
                "create_time_ms": int(now * 1000),
                "status": "open",
                "currency_pair": body.get("currency_pair", "BTC_USDT"),
                "type": body.get("type", "limit"),
                "account": body.get("account", "spot"),
                "side": body.get("side", "buy"),
                "amount": body.get("amount", "0"),
                "price": body.get("price", "0"),
                "time_in_force": body.get("time_in_force", "gtc"),
                "left": body.get("amount", "0"),
                "filled_total": "0",
            },
        )

    def futures_orders(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(200, [])

    def futures_order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return json_response(
            201,
            {
                "id": rand_int(10**10, 10**11),
                "contract": body.get("contract", "BTC_USDT"),
                "size": body.get("size", 0),
                "price": str(body.get("price", "0")),
                "tif": body.get("time_in_force", "gtc"),
                "status": "open",
                "create_time": req.config.now(),
            },
        )

    def detail(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        return json_response(
            200,
            {
                "user_id": 1667201533,
                "ip_whitelist": sorted(account.ip_whitelist or ()),
                "currency_pairs": [],
                "key": {"mode": 1},
                "tier": 0,
            },
        )

    def withdraw(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return json_response(
            202,
            {
                "id": f"w{rand_int(10**6, 10**7)}",
                "currency": body.get("currency", "USDT"),
                "amount": body.get("amount", "0"),
                "address": body.get("address", ""),
                "chain": body.get("chain", ""),
                "status": "REQUEST",
            },
        )
