"""KuCoin spot and futures: HMAC-SHA256 base64 over timestamp + METHOD + path?query + body.

Key version 2 and later send the passphrase as base64(HMAC-SHA256(secret, passphrase)).
https://www.kucoin.com/docs/basic-info/connection-method/authentication/signing-a-message
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.exchanges.base import Cooldown, Exchange, ExchangeSpec, KeyPermissions, Moment, SigningKey, UpstreamRequest
from app.exchanges.crypto import HmacKey, b64

KEY_VERSION = "2"


class KuCoin(Exchange):
    # ccxt also sends its broker-partner headers, KC-API-PARTNER-SIGN an HMAC over the placeholder key.
    auth_headers = frozenset({"kc-api-key", "kc-api-sign", "kc-api-timestamp", "kc-api-passphrase",
                              "kc-api-key-version", "kc-api-partner", "kc-api-partner-sign",
                              "kc-api-partner-verify"})
    time_path = "/api/v1/timestamp"
    key_rate = "30/second"  # private resource pools, e.g. spot 4000 weight per 30 s per UID
    ip_rate = "2000/30second"  # public, per IP

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        if status == 429 or body.find(b'"code":"429000"') >= 0 or body.find(b'"code":"200002"') >= 0:
            reset = headers.get("gw-ratelimit-reset", "")
            return Cooldown("key", max(1.0, int(reset) / 1000) if reset.isdigit() else 10.0)
        if headers.get("gw-ratelimit-remaining") == "0":  # the UID's resource pool is spent until reset
            reset = headers.get("gw-ratelimit-reset", "")
            return Cooldown("key", max(1.0, int(reset) / 1000) if reset.isdigit() else 1.0)
        return super().cooldown(status, headers, body)

    def __init__(self, spec: ExchangeSpec, public_prefixes: tuple[str, ...], check_path: str) -> None:
        self.spec = spec
        self.public_prefixes = public_prefixes
        self.check_path = check_path

    check_errors = {"400003": "invalid_key", "400004": "invalid_key", "400005": "invalid_signature",
                    "400006": "ip_not_whitelisted", "400002": "clock_skew", "400007": "permission_denied"}
    ambiguous_errors = {"400004": "the passphrase is wrong"}

    def error_code(self, status: int, body: Any) -> str | None:
        code = str(body.get("code")) if isinstance(body, dict) else None
        return None if code == "200000" else code or str(status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or "permission" not in data:
            return None  # the futures check reads the account, which says nothing about the key
        perms = set(str(data.get("permission", "")).split(","))
        return KeyPermissions(read="General" in perms, trade=bool(perms & {"Spot", "Margin", "Futures"}),
                              withdraw=bool(perms & {"Transfer", "Withdrawal"}),
                              ip_restricted=bool(data.get("ipWhitelist")))

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        self.require_json_boundary(request)
        timestamp = str(moment.now_ms)
        prehash = f"{timestamp}{request.method}{request.target}".encode() + request.body
        return request.with_headers(**{
            "KC-API-KEY": key.api_key,
            "KC-API-SIGN": b64(key.hmac.sha256(prehash)),
            "KC-API-TIMESTAMP": timestamp,
            "KC-API-PASSPHRASE": passphrase_v2(key.hmac, key.passphrase or ""),
            "KC-API-KEY-VERSION": KEY_VERSION,
        })

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["data"])

    timestamp_error_marker = b"400002"

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return isinstance(body, dict) and str(body.get("code")) == "400002"


def passphrase_v2(key: HmacKey, passphrase: str) -> str:
    return b64(key.sha256(passphrase.encode()))


SPOT = KuCoin(
    ExchangeSpec(id="kucoin", name="KuCoin", base_urls={"live": "https://api.kucoin.com"}, needs_passphrase=True),
    public_prefixes=("/api/v1/market/", "/api/v1/timestamp", "/api/v1/status", "/api/v1/symbols",
                     "/api/v2/symbols", "/api/v1/currencies", "/api/v3/currencies", "/api/v1/prices",
                     "/api/v2/market/", "/api/v3/market/"),
    check_path="/api/v1/user/api-key",
)
FUTURES = KuCoin(
    ExchangeSpec(id="kucoinfutures", name="KuCoin Futures", base_urls={"live": "https://api-futures.kucoin.com"},
                 needs_passphrase=True),
    public_prefixes=("/api/v1/timestamp", "/api/v1/status", "/api/v1/contracts", "/api/v1/ticker",
                     "/api/v1/level2", "/api/v1/trade/history", "/api/v1/kline", "/api/v1/index",
                     "/api/v1/mark-price", "/api/v1/funding-rate"),
    check_path="/api/v1/account-overview?currency=USDT",
)
