"""Crypto.com Exchange v1: the signature travels inside the JSON body."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="cryptocom",
    name="Crypto.com Exchange",
    base_urls={"live": "https://api.crypto.com", "sandbox": "https://uat-api.3ona.co"},
)
