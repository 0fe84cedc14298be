"""Gate APIv4."""

from app.exchanges.base import ExchangeSpec

SPEC = ExchangeSpec(
    id="gate",
    name="Gate",
    base_urls={"live": "https://api.gateio.ws", "testnet": "https://api-testnet.gateapi.io"},
)
