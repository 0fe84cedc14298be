"""Bybit v5."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="bybit",
    name="Bybit",
    base_urls={
        "live": "https://api.bybit.com",
        "testnet": "https://api-testnet.bybit.com",
        "demo": "https://api-demo.bybit.com",
    },
)
