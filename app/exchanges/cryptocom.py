"""Crypto.com Exchange v1: the signature travels inside the JSON body.

sig = hex(HMAC-SHA256(secret, method + id + api_key + paramString + nonce)); paramString is the
params with keys sorted and values concatenated, recursing into lists of objects.
https://exchange-docs.crypto.com/exchange/v1/rest-ws/index.html#digital-signature
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from app.exchanges.base import (
    Access,
    Cooldown,
    Exchange,
    ExchangeSpec,
    Moment,
    RequestRefused,
    SigningKey,
    UpstreamRequest,
)

PREFIX = "/exchange/v1/"
MAX_DEPTH = 2  # the three reference implementations agree only up to lists of flat objects
READ = re.compile(r"^private/(get-|user-balance)")


def param_string(value: Any, depth: int = 0) -> str:
    if depth > MAX_DEPTH + 1:
        raise RequestRefused("Crypto.com params nest deeper than its signature rules are defined for")
    if isinstance(value, dict):
        return "".join(str(k) + param_string(value[k], depth + 1) for k in sorted(value))
    if isinstance(value, list):
        return "".join(param_string(v, depth + 1) for v in value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _numbers_as_text(value: Any, depth: int = 0) -> Any:
    # The exchange wants every number as a string; sending one avoids float formatting in the signature.
    if depth > MAX_DEPTH + 1:
        raise RequestRefused("Crypto.com params nest deeper than its signature rules are defined for")
    if isinstance(value, dict):
        return {k: _numbers_as_text(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_text(v, depth + 1) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class CryptoCom(Exchange):
    spec = ExchangeSpec(
        id="cryptocom", name="Crypto.com Exchange",
        base_urls={"live": "https://api.crypto.com", "sandbox": "https://uat-api.3ona.co"},
    )
    public_prefixes = (PREFIX + "public/",)
    key_rate = "25/second"  # most private methods: 3 per 100 ms per key
    endpoint_cooldowns = True  # one path per method

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        if body.find(b'"code":42901') >= 0:  # counted per method per key: that method waits
            return Cooldown("endpoint", 1.0)
        return super().cooldown(status, headers, body)

    def method_of(self, request: UpstreamRequest) -> str:
        return request.path.removeprefix(PREFIX)

    def request_content(self, request: UpstreamRequest) -> bytes:
        # Auth lives in the body (api_key, sig, nonce, and an id clients draw from the clock): a
        # client's retry of the same order differs in all four.
        try:
            doc = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return request.body
        if not isinstance(doc, dict):
            return request.body
        order = {"method": doc.get("method"), "params": doc.get("params")}
        return json.dumps(order, sort_keys=True, separators=(",", ":")).encode()

    def classify(self, request: UpstreamRequest) -> Access:
        if self.is_public(request):
            return "public"
        method = self.method_of(request)
        if READ.match(method):  # get-* only read, get-subaccount-balances and get-withdrawal-history too
            return "read"
        return "withdraw" if self.withdraw_pattern.search(method) else "trade"

    check_method = "POST"
    check_path = PREFIX + "private/user-balance"
    check_body = b'{"id":1,"method":"private/user-balance","params":{}}'
    check_errors = {"40101": "invalid_key", "40103": "ip_not_whitelisted", "40102": "clock_skew"}
    ambiguous_errors = {"40101": "Crypto.com uses it for a wrong key and for a bad signature"}

    def error_code(self, status: int, body: Any) -> str | None:
        code = body.get("code") if isinstance(body, dict) else None
        return None if code == 0 and status < 400 else str(code if code is not None else status)

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        try:
            doc = json.loads(request.body) if request.body.strip() else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise RequestRefused("Crypto.com private calls take a JSON body") from None
        if not isinstance(doc, dict):
            raise RequestRefused("Crypto.com private calls take a JSON object")
        method = self.method_of(request)
        # The path decides access checks; a body naming another method would slip past them.
        if doc.get("method", method) != method:
            raise RequestRefused("the body's method does not match the URL path")
        request_id = doc.get("id", moment.now_ms)
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            raise RequestRefused("id must be an integer")
        request_params = _numbers_as_text(doc.get("params") or {})
        if not isinstance(request_params, dict):
            raise RequestRefused("params must be an object")
        nonce = moment.now_ms
        message = f"{method}{request_id}{key.api_key}{param_string(request_params)}{nonce}"
        signed = {"id": request_id, "method": method, "params": request_params, "api_key": key.api_key,
                  "sig": key.hmac.sha256(message.encode()).hex(), "nonce": nonce}
        body = json.dumps(signed, separators=(",", ":")).encode()
        return request.changed(body=body).with_headers(**{"content-type": "application/json"})

    timestamp_error_marker = b"40102"

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        # public/auth on the user WebSocket: the same signature, with no params.
        request_id, nonce = moment.now_ms, moment.now_ms
        sig = key.hmac.sha256(f"public/auth{request_id}{key.api_key}{nonce}".encode()).hex()
        return {"id": request_id, "method": "public/auth", "api_key": key.api_key, "sig": sig, "nonce": nonce}

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return isinstance(body, dict) and body.get("code") == 40102


SPEC = CryptoCom()
