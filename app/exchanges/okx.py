"""OKX v5: HMAC-SHA256 base64 over timestamp + METHOD + path?query + body, plain passphrase header.

https://www.okx.com/docs-v5/en/#overview-rest-authentication-making-requests
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
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


def iso_ms(now_ms: int) -> str:
    """e.g. 2020-12-08T09:08:57.715Z, as OKX signs it."""
    return f"{_iso_second(now_ms // 1000)}{now_ms % 1000:03d}Z"


@lru_cache(maxsize=4)  # the second changes a thousand times less often than requests arrive
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")


class Okx(Exchange):
    spec = ExchangeSpec(
        id="okx", name="OKX",
        # Demo trading is the same host with demo keys and `x-simulated-trading: 1`.
        base_urls={"live": "https://www.okx.com", "demo": "https://www.okx.com"},
        needs_passphrase=True,
    )
    auth_headers = frozenset({"ok-access-key", "ok-access-sign", "ok-access-timestamp", "ok-access-passphrase",
                              "x-simulated-trading"})
    public_prefixes = ("/api/v5/public/", "/api/v5/market/")
    time_path = "/api/v5/public/time"
    key_rate = "10/second"  # per endpoint per UID, mostly 10-60 per 2 s
    endpoint_cooldowns = True

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        # 50061: the sub-account's order rate, which counts new and amended orders only, so its cancels
        # and reads go on. 50011 (HTTP 429): OKX limits each endpoint apart, per UID or per IP for
        # public ones, so only that endpoint waits (a 2 s window, most of them).
        if body.find(b'"code":"50061"') >= 0:
            return Cooldown("orders", retry_after_s(headers, 2.0))
        if status == 429 or body.find(b'"code":"50011"') >= 0:
            return Cooldown("endpoint", retry_after_s(headers, 2.0))
        return super().cooldown(status, headers, body)

    check_path = "/api/v5/account/config"
    check_errors = {"50111": "invalid_key", "50105": "invalid_key", "50114": "invalid_key", "50101": "invalid_key",
                    "50113": "invalid_signature", "50110": "ip_not_whitelisted", "50102": "clock_skew",
                    "50112": "clock_skew", "50120": "permission_denied"}
    ambiguous_errors = {"50105": "the passphrase is wrong", "50101": "the key is for the other environment (demo/live)"}

    def error_code(self, status: int, body: Any) -> str | None:
        code = str(body.get("code")) if isinstance(body, dict) else None
        return None if code == "0" else code or str(status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        try:
            config = body["data"][0]
        except (KeyError, IndexError, TypeError):
            return None
        perms = set(str(config.get("perm", "")).split(","))
        return KeyPermissions(read="read_only" in perms or bool(perms), trade="trade" in perms,
                              withdraw="withdraw" in perms, ip_restricted=bool(config.get("ip")))

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        self.require_json_boundary(request)
        timestamp = iso_ms(moment.now_ms)
        prehash = f"{timestamp}{request.method}{request.target}".encode() + request.body
        headers = {
            "OK-ACCESS-KEY": key.api_key,
            "OK-ACCESS-SIGN": b64(key.hmac.sha256(prehash)),
            "OK-ACCESS-TIMESTAMP": timestamp,
            "OK-ACCESS-PASSPHRASE": key.passphrase or "",
        }
        if request.environment == "demo":
            headers["x-simulated-trading"] = "1"
        return request.with_headers(**headers)

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        # https://www.okx.com/docs-v5/en/#overview-websocket-login
        return passphrase_login(key.api_key, key.hmac, key.passphrase, moment.now_ms, "/users/self/verify")

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["data"][0]["ts"])

    timestamp_error_marker = b"501"

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return isinstance(body, dict) and str(body.get("code")) in {"50102", "50112"}


SPEC = Okx()
