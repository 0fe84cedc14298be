"""Coinbase Exchange (legacy "Pro"): reference section 2.

CB-ACCESS-SIGN = base64(HMAC-SHA256(b64decode(secret), timestamp + METHOD + path[?query] + body));
timestamp in seconds (decimals allowed) within 30 s; CB-ACCESS-PASSPHRASE in plain text.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from ..core import (
    Endpoint,
    Reject,
    SimRequest,
    SimResponse,
    Venue,
    b64,
    b64decode_strict,
    consteq,
    hmac_digest,
    json_response,
    lookup,
    require_key_type,
    single_header,
)
from ..state import (
    BAD_PASSPHRASE,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    IP_NOT_WHITELISTED,
    UNKNOWN_KEY,
    Account,
)

WINDOW_S = 30.0
TIMESTAMP = re.compile(r"\d+(\.\d+)?")


def message(status: int, text: str) -> SimResponse:
    return json_response(status, {"message": text})


class CoinbaseExchange(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/time", "public", self.time),
            Endpoint("GET", "/accounts", "read", self.accounts),
            Endpoint("POST", "/orders", "trade", self.order),
            Endpoint("POST", "/withdrawals/crypto", "withdraw", self.withdraw),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return message(404, "NotFound")

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return message(403, "Forbidden")

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        values: dict[str, str] = {}
        for name in ("CB-ACCESS-KEY", "CB-ACCESS-SIGN", "CB-ACCESS-TIMESTAMP", "CB-ACCESS-PASSPHRASE"):
            refusal = message(400 if name == "CB-ACCESS-KEY" else 401, f"{name} header is required")
            values[name] = single_header(req, name, refusal)
        account = lookup(req, values["CB-ACCESS-KEY"])
        if account is None:
            raise Reject(UNKNOWN_KEY, message(400, "Invalid API Key"))
        if not account.ip_allowed(req.client_ip):
            raise Reject(IP_NOT_WHITELISTED, message(401, "Unauthorized."), req.client_ip)
        require_key_type(account, ("hmac",), message(400, "Invalid API Key"))
        if account.passphrase is None or not consteq(values["CB-ACCESS-PASSPHRASE"], account.passphrase):
            raise Reject(BAD_PASSPHRASE, message(401, "Invalid Passphrase"))
        ts = values["CB-ACCESS-TIMESTAMP"]
        if not TIMESTAMP.fullmatch(ts) or abs(req.now_ms / 1000.0 - float(ts)) > WINDOW_S:
            raise Reject(BAD_TIMESTAMP, message(401, "invalid timestamp"), f"{ts} vs {req.now_ms / 1000:.3f}")
        secret = b64decode_strict(account.secret)
        prehash = ts.encode() + req.method.encode() + req.target.encode() + req.body
        if secret is None or not consteq(b64(hmac_digest(secret, prehash)), values["CB-ACCESS-SIGN"]):
            raise Reject(BAD_SIGNATURE, message(401, "invalid signature"), f"prehash {prehash!r}")
        return account

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        now = req.config.now()
        iso = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return json_response(200, {"iso": iso, "epoch": round(now, 3)})

    def accounts(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(
            200,
            [
                {
                    "id": "71452118-efc7-4cc4-8780-a5e22d4baa53",
                    "currency": "USD",
                    "balance": "1000.0000000000000000",
                    "available": "1000.0000000000000000",
                    "hold": "0.0000000000000000",
                    "profile_id": "75da88c5-05bf-4f54-bc85-5c775bd68254",
                    "trading_enabled": True,
                }
            ],
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return json_response(
            200,
            {
                "id": str(uuid.uuid4()),
                "price": body.get("price", "0"),
                "size": body.get("size", "0"),
                "product_id": body.get("product_id", "BTC-USD"),
                "side": body.get("side", "buy"),
                "type": body.get("type", "limit"),
                "status": "pending",
                "created_at": datetime.fromtimestamp(req.config.now(), UTC).isoformat().replace("+00:00", "Z"),
            },
        )

    def withdraw(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return json_response(
            200,
            {
                "id": str(uuid.uuid4()),
                "amount": body.get("amount", "0"),
                "currency": body.get("currency", "BTC"),
                "fee": "0.0001",
            },
        )
