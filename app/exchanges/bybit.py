"""Bybit v5: HMAC-SHA256 hex over timestamp + api key + recv window + (query for GET | body).

https://bybit-exchange.github.io/docs/v5/guide#authentication
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.exchanges.base import (
    UNREADABLE,
    Access,
    Cooldown,
    Exchange,
    ExchangeSpec,
    KeyPermissions,
    Moment,
    SigningKey,
    UpstreamRequest,
    reset_in_s,
)

DEFAULT_RECV_WINDOW = "5000"
# query-api's permission groups that trade within the account; any other non-empty group may move funds.
_TRADING_GROUPS = frozenset({"ContractTrade", "Spot", "Options", "Derivatives", "CopyTrading", "BlockTrade",
                             "Exchange", "Earn", "NFT", "Affiliate"})
WS_AUTH_VALID_MS = 10_000


class Bybit(Exchange):
    spec = ExchangeSpec(
        id="bybit", name="Bybit",
        base_urls={"live": "https://api.bybit.com", "testnet": "https://api-testnet.bybit.com",
                   "demo": "https://api-demo.bybit.com"},
    )
    auth_headers = frozenset({"x-bapi-api-key", "x-bapi-sign", "x-bapi-timestamp", "x-bapi-sign-type"})
    public_prefixes = ("/v5/market/", "/v5/announcements/")
    time_path = "/v5/market/time"
    signature_binds_endpoint = False
    endpoint_cooldowns = True
    key_rate = "10/second"  # per UID per endpoint is 10-20/s
    ip_rate = "600/5second"  # over it: HTTP 403 and a 10-minute IP ban

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        if status == 403 and body.lower().find(b"too frequent") >= 0:
            return Cooldown("ip", 600.0, ban=True)
        # "Too many visits!" (10006), or the last call this window on this endpoint: Bybit counts each
        # endpoint apart per UID, so that key's calls to that endpoint wait until the reset timestamp;
        # its other endpoints (a cancel while orders are spent) go on.
        if body.find(b'"retCode":10006') >= 0 or headers.get("x-bapi-limit-status") == "0":
            return Cooldown("endpoint", reset_in_s(headers.get("x-bapi-limit-reset-timestamp", "")) or 1.0)
        return super().cooldown(status, headers, body)

    def classify(self, request: UpstreamRequest) -> Access:
        access = super().classify(request)
        # /v5/user/ manages sub-members and API keys, the calling key's own too: update-api can lift
        # its IP restriction and add wallet rights, delete-api stops every bot that uses it.
        if access == "trade" and request.path.lower().startswith("/v5/user/"):
            return "withdraw"
        return access

    check_path = "/v5/user/query-api"
    check_errors = {"10003": "invalid_key", "33004": "invalid_key", "10004": "invalid_signature",
                    "10010": "ip_not_whitelisted", "10002": "clock_skew", "10005": "permission_denied"}

    def error_code(self, status: int, body: Any) -> str | None:
        code = body.get("retCode") if isinstance(body, dict) else None
        return None if code == 0 else str(code if code is not None else status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        try:
            result = body["result"]
        except (KeyError, TypeError):
            return None
        permissions = result.get("permissions") if isinstance(result, dict) else None
        if not isinstance(permissions, dict):
            return None  # not the answer we know: unchecked, so every right counts
        ips = result.get("ips") or []
        granted = {group for group, rights in permissions.items() if rights}
        # Every Wallet right moves funds (Withdraw, AccountTransfer, SubMemberTransfer), as withdrawals
        # and transfers do through the proxy, and so may a group this code does not know (Bybit's
        # pay and P2P groups among them); a key is read-only only when Bybit says so.
        moves_funds = "Wallet" in granted or bool(granted - _TRADING_GROUPS)
        return KeyPermissions(read=True, trade=result.get("readOnly") != 1, withdraw=moves_funds,
                              ip_restricted=bool(ips) and ips != ["*"])

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        # The client's recv window is kept (it is a trading choice); only its auth is replaced.
        recv_window = request.headers.get("x-bapi-recv-window", DEFAULT_RECV_WINDOW)
        timestamp = str(moment.now_ms)
        signed = request.query.encode() if request.method == "GET" else request.body
        prehash = f"{timestamp}{key.api_key}{recv_window}".encode() + signed
        return request.with_headers(**{
            "X-BAPI-API-KEY": key.api_key,
            "X-BAPI-TIMESTAMP": timestamp,
            "X-BAPI-RECV-WINDOW": recv_window,
            "X-BAPI-SIGN": key.hmac.sha256(prehash).hex(),
            "X-BAPI-SIGN-TYPE": "2",
        })

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        # https://bybit-exchange.github.io/docs/v5/ws/connect#authentication
        expires = moment.now_ms + WS_AUTH_VALID_MS
        signature = key.hmac.sha256(f"GET/realtime{expires}".encode()).hex()
        return {"op": "auth", "args": [key.api_key, expires, signature]}

    def server_time_ms(self, body: Any) -> int | None:
        try:
            return int(body["result"]["timeNano"]) // 1_000_000
        except UNREADABLE:  # the older answer's shape
            return int(body["time"])

    timestamp_error_marker = b"10002"

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return isinstance(body, dict) and body.get("retCode") == 10002


SPEC = Bybit()
