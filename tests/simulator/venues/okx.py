"""OKX v5: reference section 5.

Prehash = OK-ACCESS-TIMESTAMP + METHOD + path[?query] + body; HMAC-SHA256(raw secret), base64.
Timestamp is ISO-8601 UTC with milliseconds and Z, within 30 s of the server; passphrase in plain text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def error(code: str, msg: str, status: int = 401) -> SimResponse:
    return json_response(status, {"code": code, "data": [], "msg": msg})


def ok(data: list[dict[str, object]]) -> SimResponse:
    return json_response(200, {"code": "0", "data": data, "msg": ""})


class Okx(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/api/v5/public/time", "public", self.time),
            Endpoint("GET", "/api/v5/account/balance", "read", self.balance),
            Endpoint("POST", "/api/v5/trade/order", "trade", self.order),
            Endpoint("GET", "/api/v5/account/config", "keyinfo", self.config),
            Endpoint("POST", "/api/v5/asset/withdrawal", "withdraw", self.withdrawal),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return json_response(404, {"code": "404", "data": [], "msg": "Not Found"})

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        # Not named by the reference; OKX's "API key doesn't have permission" code (background).
        return error("50120", "API key doesn't have permission to use this endpoint.")

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        headers = {}
        for name, code in (
            ("OK-ACCESS-KEY", "50103"),
            ("OK-ACCESS-PASSPHRASE", "50104"),
            ("OK-ACCESS-SIGN", "50106"),
            ("OK-ACCESS-TIMESTAMP", "50107"),
        ):
            headers[name] = single_header(req, name, error(code, f'Request header "{name}" cannot be empty.'))
        account = lookup(req, headers["OK-ACCESS-KEY"])
        if account is None:
            raise Reject(UNKNOWN_KEY, error("50111", "Invalid OK-ACCESS-KEY."))
        if not account.ip_allowed(req.client_ip):
            raise Reject(
                IP_NOT_WHITELISTED,
                error("50110", f"Your IP {req.client_ip} is not included in your API key's IP whitelist."),
                req.client_ip,
            )
        require_key_type(account, ("hmac",), error("50111", "Invalid OK-ACCESS-KEY."))
        if account.passphrase is None or not consteq(headers["OK-ACCESS-PASSPHRASE"], account.passphrase):
            raise Reject(BAD_PASSPHRASE, error("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'))
        ts = headers["OK-ACCESS-TIMESTAMP"]
        if not ISO_MS.fullmatch(ts):
            raise Reject(BAD_TIMESTAMP, error("50112", "Invalid OK-ACCESS-TIMESTAMP."), ts)
        try:
            ts_ms = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp() * 1000
        except ValueError:
            raise Reject(BAD_TIMESTAMP, error("50112", "Invalid OK-ACCESS-TIMESTAMP."), ts) from None
        if abs(req.now_ms - ts_ms) > WINDOW_MS:
            raise Reject(BAD_TIMESTAMP, error("50102", "Timestamp request expired."), f"{ts} vs {req.now_ms:.0f}")
        prehash = ts.encode() + req.method.encode() + req.target.encode() + req.body
        expected = b64(hmac_digest(account.secret.encode(), prehash))
        if not consteq(expected, headers["OK-ACCESS-SIGN"]):
            raise Reject(BAD_SIGNATURE, error("50113", "Invalid Sign"), f"prehash {prehash!r}")
        return account

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok([{"ts": str(req.config.now_ms())}])

    def balance(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(
            [
                {
                    "totalEq": "1000.00",
                    "uTime": str(req.config.now_ms()),
                    "details": [{"ccy": "USDT", "eq": "1000", "availBal": "1000", "cashBal": "1000", "frozenBal": "0"}],
                }
            ]
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        return ok(
            [
                {
                    "ordId": str(rand_int(10**17, 10**18)),
                    "clOrdId": body.get("clOrdId", "") if isinstance(body, dict) else "",
                    "tag": "",
                    "ts": str(req.config.now_ms()),
                    "sCode": "0",
                    "sMsg": "Order placed",
                }
            ]
        )

    def config(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        perm = ["read_only"] + (["trade"] if account.can_trade else []) + (["withdraw"] if account.can_withdraw else [])
        return ok(
            [
                {
                    "uid": "44705892343619584",
                    "mainUid": "44705892343619584",
                    "acctLv": "2",
                    "posMode": "net_mode",
                    "label": "signvault-sim",
                    "perm": ",".join(perm),
                    "ip": ",".join(sorted(account.ip_whitelist or ())),
                }
            ]
        )

    def withdrawal(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return ok(
            [
                {
                    "wdId": str(rand_int(10**7, 10**8)),
                    "ccy": body.get("ccy", "USDT"),
                    "chain": body.get("chain", ""),
                    "amt": body.get("amt", "0"),
                    "clientId": body.get("clientId", ""),
                }
            ]
        )
