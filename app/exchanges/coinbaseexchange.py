"""Coinbase Exchange (the former Pro API): HMAC-SHA256 with the base64-decoded secret, base64 output.

Prehash: timestamp + METHOD + path?query + body; the passphrase travels in plain text.
https://docs.cdp.coinbase.com/exchange/rest-api/authentication
"""

from __future__ import annotations

from typing import Any

from app.exchanges.base import Exchange, ExchangeSpec, Moment, SigningKey, UpstreamRequest
from app.exchanges.crypto import b64


class CoinbaseExchange(Exchange):
    spec = ExchangeSpec(
        id="coinbaseexchange", name="Coinbase Exchange",
        base_urls={"live": "https://api.exchange.coinbase.com",
                   "sandbox": "https://api-public.sandbox.exchange.coinbase.com"},
        needs_passphrase=True,
        secret_encoding="base64",  # nosec B106
    )
    auth_headers = frozenset({"cb-access-key", "cb-access-sign", "cb-access-timestamp", "cb-access-passphrase"})
    public_prefixes = ("/time", "/products", "/currencies")
    time_path = "/time"
    key_rate = "15/second"  # private: 15 per second per profile (bursts to 30)

    check_path = "/accounts"
    check_errors = {"Invalid API Key": "invalid_key", "Invalid Passphrase": "invalid_key",
                    "invalid signature": "invalid_signature", "invalid timestamp": "clock_skew",
                    "Forbidden": "permission_denied"}

    def error_code(self, status: int, body: Any) -> str | None:
        if status < 400:
            return None
        return str(body.get("message")) if isinstance(body, dict) and body.get("message") else str(status)

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        self.require_json_boundary(request)
        timestamp = str(moment.now_ms // 1000)
        prehash = f"{timestamp}{request.method}{request.target}".encode() + request.body
        return request.with_headers(**{
            "CB-ACCESS-KEY": key.api_key,
            "CB-ACCESS-SIGN": b64(key.hmac.sha256(prehash)),
            "CB-ACCESS-TIMESTAMP": timestamp,
            "CB-ACCESS-PASSPHRASE": key.passphrase or "",
        })

    def server_time_ms(self, body: Any) -> int | None:
        return int(float(body["epoch"]) * 1000)


SPEC = CoinbaseExchange()
