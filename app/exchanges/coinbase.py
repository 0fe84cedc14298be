"""Coinbase Advanced Trade: CDP keys signing a per-request JWT (ES256 or Ed25519)."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="coinbase",
    name="Coinbase Advanced Trade",
    base_urls={"live": "https://api.coinbase.com", "sandbox": "https://api-sandbox.coinbase.com"},
    key_types=("ecdsa", "ed25519"),
)
