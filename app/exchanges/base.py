"""What every exchange adapter declares about itself, as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

KeyType = Literal["hmac", "ed25519", "rsa", "ecdsa"]
SecretEncoding = Literal["utf8", "base64"]

LIVE = "live"


@dataclass(frozen=True)
class ExchangeSpec:
    """An exchange's needs: key types, passphrase, how the secret is encoded, its base URLs."""

    id: str  # as ccxt names it, so users recognise it
    name: str
    base_urls: Mapping[str, str]  # environment ("live", "testnet", "demo") -> origin
    key_types: tuple[KeyType, ...] = ("hmac",)
    needs_passphrase: bool = False
    secret_encoding: SecretEncoding = "utf8"  # how an HMAC secret becomes key bytes

    @property
    def default_key_type(self) -> KeyType:
        return self.key_types[0]

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(self.base_urls)
