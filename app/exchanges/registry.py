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
# Exchange ids of one account and one set of hosts: a Binance key signs spot and USDⓈ-M futures
# alike, and either id reaches fapi.binance.com, where the egress IP has one budget and one ban.
FAMILIES = {"binanceusdm": "binance", "kucoinfutures": "kucoin"}


def family(exchange_id: str) -> str:
    return FAMILIES.get(exchange_id, exchange_id)


def get_adapter(exchange_id: str) -> Exchange | None:
    return ADAPTERS.get(exchange_id)


def get_exchange(exchange_id: str) -> ExchangeSpec | None:
    adapter = ADAPTERS.get(exchange_id)
    return adapter.spec if adapter else None
