"""Bitget v2: HMAC-SHA256 base64 over timestamp + METHOD + path?query + body, plain passphrase.

https://www.bitget.com/api-doc/common/signature
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.exchanges.base import (
    Cooldown,
    Exchange,
    ExchangeSpec,
    KeyPermissions,
    Moment,
    SigningKey,
    UpstreamRequest,
    retry_after_s,
)
from app.exchanges.crypto import b64, passphrase_login


class Bitget(Exchange):
    spec = ExchangeSpec(
        id="bitget", name="Bitget",
        # Demo trading is the same host with demo keys and `paptrading: 1`.
        base_urls={"live": "https://api.bitget.com", "demo": "https://api.bitget.com"},
        needs_passphrase=True,
    )
    auth_headers = frozenset({"access-key", "access-sign", "access-timestamp", "access-passphrase", "paptrading"})
    public_prefixes = ("/api/v2/public/", "/api/v2/spot/market/", "/api/v2/mix/market/")
    time_path = "/api/v2/public/time"
    key_rate = "10/second"  # per UID per endpoint, mostly 10-20/s
    ip_rate = "6000/minute"
    endpoint_cooldowns = True

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        # 429: Bitget counts each endpoint apart per UID, in one-second windows; the key's other
        # endpoints (its cancels while orders are spent) go on.
        if status == 429:
            return Cooldown("endpoint", retry_after_s(headers, 1.0))
        return super().cooldown(status, headers, body)

    check_path = "/api/v2/spot/account/info"
    check_errors = {"40006": "invalid_key", "40037": "invalid_key", "40012": "invalid_key",
                    "40009": "invalid_signature", "40018": "ip_not_whitelisted", "40005": "clock_skew",
                    "40008": "clock_skew", "40014": "permission_denied"}
    ambiguous_errors = {"40012": "the key or the passphrase is wrong"}

    def error_code(self, status: int, body: Any) -> str | None:
        code = str(body.get("code")) if isinstance(body, dict) else None
        return None if code == "00000" else code or str(status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return None
        authorities = [str(a).lower() for a in data.get("authorities", [])]
        return KeyPermissions(read=True, trade=any("trade" in a for a in authorities),
                              withdraw=any("withdraw" in a or "transfer" in a for a in authorities),
                              ip_restricted=bool(data.get("ips")))

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        self.require_json_boundary(request)
        timestamp = str(moment.now_ms)
        prehash = f"{timestamp}{request.method}{request.target}".encode() + request.body
        headers = {
            "ACCESS-KEY": key.api_key,
            "ACCESS-SIGN": b64(key.hmac.sha256(prehash)),
            "ACCESS-TIMESTAMP": timestamp,
            "ACCESS-PASSPHRASE": key.passphrase or "",
            "locale": request.headers.get("locale", "en-US"),
        }
        if request.environment == "demo":
            headers["paptrading"] = "1"
        return request.with_headers(**headers)

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        # https://www.bitget.com/api-doc/common/websocket-intro (login)
        return passphrase_login(key.api_key, key.hmac, key.passphrase, moment.now_ms, "/user/verify")

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["data"]["serverTime"])

    timestamp_error_marker = b"4000"

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return isinstance(body, dict) and str(body.get("code")) in {"40005", "40008"}


SPEC = Bitget()
