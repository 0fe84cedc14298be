"""Bybit v5: reference section 6.

Prehash = X-BAPI-TIMESTAMP + api key + X-BAPI-RECV-WINDOW + (GET: raw query; POST: raw body).
HMAC-SHA256(raw secret) as lowercase hex, or RSA-SHA256 base64 for self-generated RSA keys.
Accepted when server - recv_window <= timestamp < server + 1000.
"""

from __future__ import annotations

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
    verify_asymmetric,
)
from ..state import (
    BAD_REQUEST,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    DUPLICATE_PARAMETER,
    IP_NOT_WHITELISTED,
    MISSING_AUTH,
    UNKNOWN_KEY,
    Account,
)

DEFAULT_RECV_WINDOW = 5000


def envelope(req: SimRequest, code: int, msg: str, result: object) -> dict[str, object]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": req.config.now_ms()}


def error(req: SimRequest, code: int, msg: str, status: int = 200) -> SimResponse:
    return json_response(status, envelope(req, code, msg, {}))


def ok(req: SimRequest, result: object) -> SimResponse:
    return json_response(200, envelope(req, 0, "OK", result))


class Bybit(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/v5/market/time", "public", self.time),
            Endpoint("GET", "/v5/account/wallet-balance", "read", self.wallet_balance),
            Endpoint("POST", "/v5/order/create", "trade", self.order),
            Endpoint("GET", "/v5/user/query-api", "keyinfo", self.query_api),
            Endpoint("POST", "/v5/asset/withdraw/create", "withdraw", self.withdraw),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return json_response(404, {"retCode": 404, "retMsg": "Not Found"})

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return error(req, 10005, "Permission denied, please check your API key permissions.")

    def extra_headers(self, req: SimRequest) -> dict[str, str]:
        return {
            "X-Bapi-Limit": "20",
            "X-Bapi-Limit-Status": "19",
            "X-Bapi-Limit-Reset-Timestamp": str(req.config.now_ms()),
        }

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        def one(name: str) -> str | None:
            values = req.header_values(name)
            if len(values) > 1:
                raise Reject(DUPLICATE_PARAMETER, error(req, 10001, f"duplicate header {name}"), name)
            return values[0] if values else None

        api_key = one("X-BAPI-API-KEY")
        if not api_key:
            raise Reject(MISSING_AUTH, error(req, 10003, "API key is invalid."), "X-BAPI-API-KEY")
        account = lookup(req, api_key)
        if account is None:
            raise Reject(UNKNOWN_KEY, error(req, 10003, "API key is invalid."))
        if not account.ip_allowed(req.client_ip):
            raise Reject(
                IP_NOT_WHITELISTED,
                error(req, 10010, "Unmatched IP, please check your API key's bound IP addresses."),
                req.client_ip,
            )
        require_key_type(account, ("hmac", "rsa"), error(req, 10003, "API key is invalid."))
        ts_raw = one("X-BAPI-TIMESTAMP")
        recv_raw = one("X-BAPI-RECV-WINDOW")
        sign = one("X-BAPI-SIGN")
        if not ts_raw or not ts_raw.isdigit():
            raise Reject(BAD_TIMESTAMP, error(req, 10002, "invalid request, please check your timestamp"), "ts")
        if recv_raw is not None and not recv_raw.isdigit():
            raise Reject(BAD_REQUEST, error(req, 10001, "invalid recv_window"), recv_raw)
        recv_window = int(recv_raw) if recv_raw else DEFAULT_RECV_WINDOW
        ts, server = int(ts_raw), req.now_ms
        if not (server - recv_window <= ts < server + 1000):
            raise Reject(
                BAD_TIMESTAMP,
                error(
                    req,
                    10002,
                    "invalid request, please check your server timestamp or recv_window param. "
                    f"req_timestamp[{ts}],server_timestamp[{int(server)}],recv_window[{recv_window}]",
                ),
                f"ts {ts} server {server:.0f} recv {recv_window}",
            )
        if not sign:
            raise Reject(MISSING_AUTH, error(req, 10004, "error sign! missing X-BAPI-SIGN"), "X-BAPI-SIGN")
        payload = req.query.encode() if req.method == "GET" else req.body
        # With no X-BAPI-RECV-WINDOW header the reference does not say what stands in the prehash:
        # accept the empty string or the default "5000".
        windows = [recv_raw] if recv_raw is not None else ["", str(DEFAULT_RECV_WINDOW)]
        for window in windows:
            prehash = ts_raw.encode() + api_key.encode() + window.encode() + payload
            if account.key_type == "hmac":
                if consteq(hmac_digest(account.secret.encode(), prehash).hex(), sign):
                    return account
            elif verify_asymmetric(account, sign, prehash):
                return account
        raise Reject(BAD_SIGNATURE, error(req, 10004, "error sign! origin_string[...]"), f"payload {payload!r}")

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        now = req.config.now()
        return ok(req, {"timeSecond": str(int(now)), "timeNano": str(int(now * 1e9))})

    def wallet_balance(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(
            req,
            {
                "list": [
                    {
                        "accountType": "UNIFIED",
                        "totalEquity": "1000.00",
                        "totalWalletBalance": "1000.00",
                        "totalAvailableBalance": "1000.00",
                        "coin": [{"coin": "USDT", "equity": "1000", "walletBalance": "1000", "locked": "0"}],
                    }
                ]
            },
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        link = body.get("orderLinkId", "") if isinstance(body, dict) else ""
        return ok(req, {"orderId": f"{rand_int(0, 2**64):016x}", "orderLinkId": link})

    def query_api(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        return ok(
            req,
            {
                "id": "13770661",
                "note": "signvault-sim",
                "apiKey": req.record.api_key,
                "readOnly": 0 if account.can_trade else 1,
                "secret": "",
                "permissions": {
                    "ContractTrade": ["Order", "Position"] if account.can_trade else [],
                    "Spot": ["SpotTrade"] if account.can_trade else [],
                    "Wallet": ["AccountTransfer", "SubMemberTransfer", "Withdraw"] if account.can_withdraw else [],
                    "Options": [],
                    "Derivatives": [],
                    "CopyTrading": [],
                    "BlockTrade": [],
                    "Exchange": [],
                    "NFT": [],
                },
                "ips": sorted(account.ip_whitelist) if account.ip_whitelist is not None else ["*"],
                "type": 1,
                "deadlineDay": 83 if account.ip_whitelist is None else -1,
                "expiredAt": "2030-01-01T00:00:00Z",
                "createdAt": "2024-01-01T00:00:00Z",
                "unified": 0,
                "uta": 1,
                "userID": 24617703,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "isMaster": True,
            },
        )

    def withdraw(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(req, {"id": str(rand_int(10**6, 10**7))})
