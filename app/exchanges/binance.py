"""Binance spot (`/api`, `/sapi`) and USDⓈ-M futures (`/fapi`)."""

from app.exchanges.base import ExchangeSpec

SPOT = ExchangeSpec(
    id="binance",
    name="Binance",
    base_urls={
        "live": "https://api.binance.com",
        "testnet": "https://testnet.binance.vision",
        "demo": "https://demo-api.binance.com",
    },
    # HMAC is "deprecated" in Binance's key-type FAQ; Ed25519 is what they recommend.
    key_types=("hmac", "ed25519", "rsa"),
)

USDM = ExchangeSpec(
    id="binanceusdm",
    name="Binance USDⓈ-M futures",
    base_urls={
        "live": "https://fapi.binance.com",
        "testnet": "https://testnet.binancefuture.com",
        "demo": "https://demo-fapi.binance.com",
    },
    key_types=("hmac", "ed25519", "rsa"),
)
