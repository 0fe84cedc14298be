"""KuCoin spot and futures: one signing scheme, two hosts."""

from app.exchanges.base import ExchangeSpec

SPOT = ExchangeSpec(
    id="kucoin",
    name="KuCoin",
    base_urls={"live": "https://api.kucoin.com"},
    needs_passphrase=True,
)

FUTURES = ExchangeSpec(
    id="kucoinfutures",
    name="KuCoin Futures",
    base_urls={"live": "https://api-futures.kucoin.com"},
    needs_passphrase=True,
)
