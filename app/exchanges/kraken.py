"""Kraken spot: API-Sign = base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + postdata))).

The nonce must strictly increase per key, across every process that uses the key.
https://docs.kraken.com/api/docs/guides/spot-rest-auth
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from app.exchanges import params
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
from app.exchanges.crypto import b64

# Private methods that only read (all private calls are POST, so the method cannot tell).
READS = frozenset({
    "Balance", "BalanceEx", "TradeBalance", "OpenOrders", "ClosedOrders", "QueryOrders", "TradesHistory",
    # Not GetWebSocketsToken: that token places orders on Kraken's WebSocket API (it needs trade).
    "QueryTrades", "OpenPositions", "Ledgers", "QueryLedgers", "TradeVolume",
    "DepositMethods", "DepositAddresses", "DepositStatus", "WithdrawInfo", "WithdrawMethods",
    "WithdrawAddresses", "WithdrawStatus", "ExportStatus", "RetrieveExport", "OrderAmends",
})


class Kraken(Exchange):
    spec = ExchangeSpec(
        id="kraken", name="Kraken",
        base_urls={"live": "https://api.kraken.com"},  # no public spot testnet
        # The HMAC key is the base64-decoded secret.
        secret_encoding="base64",  # nosec B106
    )
    auth_headers = frozenset({"api-key", "api-sign"})
    auth_params = frozenset({"nonce"})
    always_form = True  # sign() sends the body as a form even when the client labelled it otherwise
    public_prefixes = ("/0/public/",)
    time_path = "/0/public/Time"
    uses_nonce = True
    # A per-key counter: +1 a call, 15 at most, decaying 0.33/s on the starter tier.
    key_rate = "15/45second"

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        if body.find(b"EGeneral:Temporary lockout") >= 0:
            return Cooldown("key", 900.0, ban=True)
        if body.find(b"Rate limit exceeded") >= 0:  # EAPI: and EOrder: both say it with HTTP 200
            return Cooldown("key", 15.0)
        return super().cooldown(status, headers, body)

    def classify(self, request: UpstreamRequest) -> Access:
        if self.is_public(request):
            return "public"
        method = request.path.rsplit("/", 1)[-1]
        if method in READS:
            return "read"
        # Withdraw, WithdrawCancel, WalletTransfer, AccountTransfer, CreateSubaccount, in any spelling.
        return "withdraw" if self.withdraw_pattern.search(method) else "trade"

    # No key-info endpoint: a balance read proves the key, not what it may do.
    check_method = "POST"
    check_path = "/0/private/Balance"
    check_errors = {"EAPI:Invalid key": "invalid_key", "EAPI:Invalid signature": "invalid_signature",
                    "EAPI:Invalid nonce": "clock_skew", "EGeneral:Permission denied": "permission_denied"}
    ambiguous_errors = {"EGeneral:Permission denied": "Kraken also says it when the IP is not whitelisted"}

    def error_code(self, status: int, body: Any) -> str | None:
        errors = body.get("error") if isinstance(body, dict) else None
        if errors:
            return str(errors[0])
        return None if status < 400 else str(status)

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        if moment.nonce is None:
            raise RequestRefused("Kraken signs with a nonce")
        nonce = str(moment.nonce)
        body = params.join([("nonce", nonce), *params.pairs(request.body.decode("latin-1"))]).encode("latin-1")
        digest = hashlib.sha256(nonce.encode() + body).digest()
        signature = b64(key.hmac.sha512(request.target.encode() + digest))
        signed = request.changed(body=body).with_headers(**{"API-Key": key.api_key, "API-Sign": signature})
        return signed.with_headers(**{"content-type": params.FORM})

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["result"]["unixtime"]) * 1000


SPEC = Kraken()
