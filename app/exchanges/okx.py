"""OKX v5."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="okx",
    name="OKX",
    # Demo trading is the same host with demo keys and `x-simulated-trading: 1`.
    base_urls={"live": "https://www.okx.com", "demo": "https://www.okx.com"},
    needs_passphrase=True,
)
