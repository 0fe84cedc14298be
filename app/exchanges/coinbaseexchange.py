"""Coinbase Exchange (the former Pro API): HMAC with CB-ACCESS-* headers and a passphrase."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="coinbaseexchange",
    name="Coinbase Exchange",
    base_urls={
        "live": "https://api.exchange.coinbase.com",
        "sandbox": "https://api-public.sandbox.exchange.coinbase.com",
    },
    needs_passphrase=True,
    secret_encoding="base64",
)
