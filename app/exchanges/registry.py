"""Exchange id -> adapter."""

from __future__ import annotations

from app.exchanges import (
    binance,
    bitget,
    bybit,
    coinbase,
    coinbaseexchange,
    cryptocom,
    gate,
    kraken,
    kucoin,
    okx,
)
from app.exchanges.base import Exchange, ExchangeSpec

ADAPTERS: dict[str, Exchange] = {
    adapter.id: adapter
    for adapter in (
        binance.SPOT,
        binance.USDM,
        okx.SPEC,
        bybit.SPEC,
        kraken.SPEC,
        coinbase.SPEC,
        coinbaseexchange.SPEC,
        cryptocom.SPEC,
        kucoin.SPOT,
        kucoin.FUTURES,
        bitget.SPEC,
        gate.SPEC,
    )
}
EXCHANGES: dict[str, ExchangeSpec] = {exchange_id: a.spec for exchange_id, a in ADAPTERS.items()}


def get_adapter(exchange_id: str) -> Exchange | None:
    return ADAPTERS.get(exchange_id)


def get_exchange(exchange_id: str) -> ExchangeSpec | None:
    adapter = ADAPTERS.get(exchange_id)
    return adapter.spec if adapter else None
