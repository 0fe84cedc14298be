"""Kraken spot."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="kraken",
    name="Kraken",
    base_urls={"live": "https://api.kraken.com"},  # no public spot testnet
    secret_encoding="base64",  # the HMAC key is the base64-decoded secret
)
