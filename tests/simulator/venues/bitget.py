"""Bitget v2: reference section 9.

ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + path[?query] + body)) (RSA keys:
SHA256withRSA, base64); ACCESS-TIMESTAMP in ms within 30 s; ACCESS-PASSPHRASE in plain text.
"""

from __future__ import annotations

from ..core import (
    Endpoint,
    Reject,
    SimRequest,
    SimResponse,
    Venue,
    b64,
    consteq,
    hmac_digest,
    json_response,
    lookup,
    rand_int,
    require_key_type,
    single_header,
    verify_asymmetric,
)
from ..state import (
    BAD_PASSPHRASE,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    IP_NOT_WHITELISTED,
    UNKNOWN_KEY,
    Account,
)

WINDOW_MS = 30_000


def error(req: SimRequest, code: str, msg: str, status: int = 400) -> SimResponse:
    return json_response(status, {"code": code, "msg": msg, "requestTime": req.config.now_ms(), "data": None})


def ok(req: SimRequest, data: object) -> SimResponse:
    return json_response(200, {"code": "00000", "msg": "success", "requestTime": req.config.now_ms(), "data": data})


class Bitget(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/api/v2/public/time", "public", self.time),
            Endpoint("GET", "/api/v2/spot/account/assets", "read", self.assets),
            Endpoint("POST", "/api/v2/spot/trade/place-order", "trade", self.place_order),
            Endpoint("GET", "/api/v2/spot/account/info", "keyinfo", self.info),
            Endpoint("POST", "/api/v2/spot/wallet/withdrawal", "withdraw", self.withdrawal),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return error(req, "40404", "Request URL NOT FOUND", 404)

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return error(req, "40014", "Incorrect permissions")

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        values: dict[str, str] = {}
        for name, code in (
            ("ACCESS-KEY", "40001"),
            ("ACCESS-SIGN", "40002"),
            ("ACCESS-TIMESTAMP", "40003"),
            ("ACCESS-PASSPHRASE", "40011"),
        ):
            values[name] = single_header(req, name, error(req, code, f"{name.replace('-', '_')} cannot be empty"))
        account = lookup(req, values["ACCESS-KEY"])
        if account is None:
            raise Reject(UNKNOWN_KEY, error(req, "40006", "Invalid ACCESS_KEY"))
        if not account.ip_allowed(req.client_ip):
            raise Reject(IP_NOT_WHITELISTED, error(req, "40018", f"Invalid IP {req.client_ip}"), req.client_ip)
        require_key_type(account, ("hmac", "rsa"), error(req, "40006", "Invalid ACCESS_KEY"))
        if account.passphrase is None or not consteq(values["ACCESS-PASSPHRASE"], account.passphrase):
            raise Reject(BAD_PASSPHRASE, error(req, "40012", "apikey/password is incorrect"))
        ts = values["ACCESS-TIMESTAMP"]
        if not ts.isdigit():
            raise Reject(BAD_TIMESTAMP, error(req, "40005", "Invalid ACCESS_TIMESTAMP"), ts)
        if abs(req.now_ms - int(ts)) > WINDOW_MS:
            raise Reject(BAD_TIMESTAMP, error(req, "40008", "Request timestamp expired"), f"{ts} vs {req.now_ms:.0f}")
        prehash = ts.encode() + req.method.encode() + req.target.encode() + req.body
        if account.key_type == "hmac":
            good = consteq(b64(hmac_digest(account.secret.encode(), prehash)), values["ACCESS-SIGN"])
        else:
            good = verify_asymmetric(account, values["ACCESS-SIGN"], prehash)
        if not good:
            raise Reject(BAD_SIGNATURE, error(req, "40009", "sign signature error"), f"prehash {prehash!r}")
        return account

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(req, {"serverTime": str(req.config.now_ms())})

    def assets(self, req: SimRequest, account: Account | None) -> SimResponse:
        now = str(req.config.now_ms())
        return ok(
            req,
            [
                {
                    "coin": "USDT",
                    "available": "1000.00000000",
                    "frozen": "0",
                    "locked": "0",
                    "limitAvailable": "0",
                    "uTime": now,
                }
            ],
        )

    def place_order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return ok(req, {"orderId": str(rand_int(10**17, 10**18)), "clientOid": body.get("clientOid", "")})

    def info(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        authorities = (
            ["readonly"]
            + (["spot_trade"] if account.can_trade else [])
            + (["withdraw"] if account.can_withdraw else [])
        )
        return ok(
            req,
            {
                "userId": "3851478822",
                "inviterId": "",
                "ips": ",".join(sorted(account.ip_whitelist or ())),
                "authorities": authorities,
                "parentId": 3851478822,
                "traderType": "",
                "channelCode": "",
                "channel": "",
                "regisTime": "1700000000000",
            },
        )

    def withdrawal(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return ok(req, {"orderId": str(rand_int(10**17, 10**18)), "clientOid": body.get("clientOid", "")})
