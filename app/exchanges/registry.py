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
from app.exchanges.base import ExchangeSpec

EXCHANGES: dict[str, ExchangeSpec] = {
    spec.id: spec
    for spec in (
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


def get_exchange(exchange_id: str) -> ExchangeSpec | None:
    return EXCHANGES.get(exchange_id)
