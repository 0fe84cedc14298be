"""Gate APIv4: HMAC-SHA512 hex over METHOD, path, query, hex SHA-512 of the body, timestamp (s).

https://www.gate.io/docs/developers/apiv4/#authentication
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from app.exchanges.base import (
    Cooldown,
    Exchange,
    ExchangeSpec,
    KeyPermissions,
    Moment,
    RequestRefused,
    SigningKey,
    UpstreamRequest,
    reset_in_s,
)


def prehash(method: str, path: str, query: str, body: bytes, timestamp: str) -> bytes:
    return "\n".join((method, path, query, hashlib.sha512(body).hexdigest(), timestamp)).encode()


class Gate(Exchange):
    spec = ExchangeSpec(
        id="gate", name="Gate",
        base_urls={"live": "https://api.gateio.ws", "testnet": "https://api-testnet.gateapi.io"},
    )
    auth_headers = frozenset({"key", "sign", "timestamp"})
    public_prefixes = tuple(f"/api/v4/{p}" for p in (
        "spot/currencies", "spot/currency_pairs", "spot/tickers", "spot/order_book", "spot/trades",
        "spot/candlesticks", "spot/time", "futures/usdt/contracts", "futures/btc/contracts",
        "futures/usdt/order_book", "futures/usdt/tickers", "futures/usdt/candlesticks", "futures/usdt/trades"))
    time_path = "/api/v4/spot/time"
    key_rate = "10/second"  # spot order placement: 10/s per UID
    endpoint_cooldowns = True

    check_path = "/api/v4/account/detail"
    check_errors = {"INVALID_KEY": "invalid_key", "INVALID_CREDENTIALS": "invalid_key",
                    "INVALID_SIGNATURE": "invalid_signature", "IP_FORBIDDEN": "ip_not_whitelisted",
                    "REQUEST_EXPIRED": "clock_skew", "FORBIDDEN": "permission_denied", "READ_ONLY": "permission_denied"}

    def error_code(self, status: int, body: Any) -> str | None:
        if status < 400:
            return None
        return str(body.get("label")) if isinstance(body, dict) and body.get("label") else str(status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        # account/detail tells the IP restriction; Gate does not expose the key's permissions there.
        return KeyPermissions(ip_restricted=bool(body.get("ip_whitelist"))) if isinstance(body, dict) else None

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        timestamp = str(moment.now_ms // 1000)
        message = prehash(request.method, request.path, request.query, request.body, timestamp)
        return request.with_headers(KEY=key.api_key, Timestamp=timestamp,
                                    SIGN=key.hmac.sha512(message).hex())

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        # Gate signs each private channel request, not a session: it needs the channel and event.
        # https://www.gate.io/docs/developers/apiv4/ws/en/#authentication
        channel, event = options.get("channel"), options.get("event", "subscribe")
        if not channel:
            raise RequestRefused("Gate signs each private channel request: give 'channel' (and 'event')")
        now = moment.now_ms // 1000
        sign = key.hmac.sha512(f"channel={channel}&event={event}&time={now}".encode()).hex()
        return {"time": now, "channel": channel, "event": event,
                "auth": {"method": "api_key", "KEY": key.api_key, "SIGN": sign}}

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        if headers.get("x-gate-ratelimit-requests-remain") == "0":  # what is left on this endpoint
            # Gate's docs give no unit; clients in the wild read seconds or milliseconds, and taking
            # milliseconds for seconds would pause the key for MAX_COOLDOWN_S.
            reset = headers.get("x-gate-ratelimit-reset-timestamp", "")
            return Cooldown("endpoint", reset_in_s(reset, unit_ms=None) or 1.0)
        return super().cooldown(status, headers, body)

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["server_time"])

    timestamp_error_marker = b"REQUEST_EXPIRED"

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return isinstance(body, dict) and body.get("label") == "REQUEST_EXPIRED"


SPEC = Gate()
