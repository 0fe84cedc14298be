"""One module per fake exchange; VENUES maps each exchange id to its class."""

from __future__ import annotations

from ..core import Venue
from .binance import Binance
from .bitget import Bitget
from .bybit import Bybit
from .coinbase import Coinbase
from .coinbaseexchange import CoinbaseExchange
from .cryptocom import CryptoCom
from .gate import Gate
from .kraken import Kraken
from .kucoin import KuCoin, KuCoinFutures
from .okx import Okx

VENUES: dict[str, type[Venue]] = {
    "binance": Binance,
    "binanceusdm": Binance,
    "okx": Okx,
    "bybit": Bybit,
    "kraken": Kraken,
    "coinbase": Coinbase,
    "coinbaseexchange": CoinbaseExchange,
    "cryptocom": CryptoCom,
    "kucoin": KuCoin,
    "kucoinfutures": KuCoinFutures,
    "bitget": Bitget,
    "gate": Gate,
}

__all__ = ["VENUES"]
