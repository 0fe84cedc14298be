"""Bitget v2."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="bitget",
    name="Bitget",
    # Demo trading is the same host with demo keys and `paptrading: 1`.
    base_urls={"live": "https://api.bitget.com", "demo": "https://api.bitget.com"},
    needs_passphrase=True,
)
