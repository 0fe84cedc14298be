"""Mutable simulator state: accounts, clock, forced responses and the log of received requests.

Everything here is shared between the test thread and the uvicorn thread, so every mutation of a
collection goes through one re-entrant lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

EXCHANGE_IDS: tuple[str, ...] = (
    "binance",
    "binanceusdm",
    "okx",
    "bybit",
    "kraken",
    "coinbase",
    "coinbaseexchange",
    "cryptocom",
    "kucoin",
    "kucoinfutures",
    "bitget",
    "gate",
)

KEY_TYPES = ("hmac", "ed25519", "rsa", "ecdsa")

# Verdicts recorded on every ReceivedRequest.
PENDING = "pending"
ACCEPTED = "accepted"
FORCED = "forced"
NOT_FOUND = "not_found"
BAD_REQUEST = "bad_request"
MISSING_AUTH = "missing_auth"
UNKNOWN_KEY = "unknown_key"
IP_NOT_WHITELISTED = "ip_not_whitelisted"
BAD_PASSPHRASE = "bad_passphrase"
BAD_TIMESTAMP = "bad_timestamp"
BAD_NONCE = "bad_nonce"
BAD_SIGNATURE = "bad_signature"
DUPLICATE_PARAMETER = "duplicate_parameter"
PERMISSION_DENIED = "permission_denied"
UNSUPPORTED_KEY_TYPE = "unsupported_key_type"


@dataclass
class Account:
    """One API key on one exchange, as the exchange knows it.

    `secret` is exactly what a user pastes into signvault: the HMAC secret string, or for asymmetric
    keys the private key (Binance/Bybit/Bitget RSA and Binance Ed25519 as PKCS#8 PEM; Coinbase ECDSA
    as a SEC1 "BEGIN EC PRIVATE KEY" PEM, Coinbase Ed25519 as base64 of 32 or 64 bytes). The simulator
    derives the public key from it to verify signatures.
    """

    secret: str
    passphrase: str | None = None
    key_type: str = "hmac"
    ip_whitelist: set[str] | None = None
    can_trade: bool = True
    can_withdraw: bool = False
    kucoin_key_version: int = 2
    # Kraken: the last nonce accepted for this key (strictly increasing). Managed by the simulator.
    last_nonce: int | None = None
    # Binance: unfilled new orders per (limit's interval, which interval since the epoch), and
    # under ("filled", ...) the last order's, to be taken off before the next one is counted.
    order_counts: dict[tuple[str, ...], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key_type not in KEY_TYPES:
            raise ValueError(f"key_type must be one of {KEY_TYPES}, not {self.key_type!r}")
        if self.ip_whitelist is not None:
            self.ip_whitelist = set(self.ip_whitelist)

    def ip_allowed(self, ip: str) -> bool:
        return self.ip_whitelist is None or ip in self.ip_whitelist


@dataclass
class ForcedResponse:
    """A canned answer (and/or a delay) for the next `times` matching requests of one exchange."""

    exchange: str
    status: int | None = None  # None: only delay, then verify and answer normally
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is; None -> empty body
    headers: dict[str, str] | None = None
    times: int | None = 1  # None: forever
    delay_seconds: float = 0.0
    method: str | None = None  # only requests with this method (None: any)
    path: str | None = None  # only this exchange-relative path (None: any)
    used: int = 0

    def matches(self, exchange: str, method: str, path: str) -> bool:
        if self.exchange != exchange:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is not None and self.path != path:
            return False
        return self.times is None or self.used < self.times

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class ReceivedRequest:
    """One request as the fake exchange received it, with the verdict it reached."""

    exchange: str
    method: str
    path: str  # exchange-relative raw path (mount prefix stripped, percent-encoding kept)
    query: str  # raw query string exactly as received ("" if none)
    headers: dict[str, str]  # lower-cased names; a repeated header's values are joined with ", "
    raw_headers: list[tuple[str, str]]  # every header line as received, in order
    body: bytes
    client_ip: str
    host: str | None
    received_at: float  # time.time() when it arrived (real clock, not the simulator clock)
    verdict: str = PENDING
    status: int | None = None
    response_body: bytes = b""
    api_key: str | None = None
    detail: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


class RequestLog:
    """Thread-safe, append-only list of ReceivedRequest (supports len, indexing, iteration)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._items: list[ReceivedRequest] = []

    def append(self, item: ReceivedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def snapshot(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._items)

    def for_exchange(self, exchange: str) -> list[ReceivedRequest]:
        return [r for r in self.snapshot() if r.exchange == exchange]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __getitem__(self, index: int) -> ReceivedRequest:
        with self._lock:
            return self._items[index]

    def __iter__(self) -> Iterator[ReceivedRequest]:
        return iter(self.snapshot())

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"RequestLog({self.snapshot()!r})"


@dataclass
class SimulatorConfig:
    """All state of the fake exchanges; tests mutate it freely while the server runs."""

    clock_offset_ms: float = 0.0
    accounts: dict[tuple[str, str], Account] = field(default_factory=dict)
    forced: list[ForcedResponse] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.received = RequestLog(self.lock)

    # -- clock -------------------------------------------------------------------------------
    def now(self) -> float:
        """The simulator's clock in seconds since the epoch (real time + clock_offset_ms)."""
        return time.time() + self.clock_offset_ms / 1000.0

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    # -- accounts ----------------------------------------------------------------------------
    def add_account(self, exchange: str, api_key: str, secret: str, **fields: Any) -> Account:
        """Register (or replace) the key `api_key` on `exchange`; fields as in Account."""
        _check_exchange(exchange)
        account = Account(secret=secret, **fields)
        with self.lock:
            self.accounts[(exchange, api_key)] = account
        return account

    def get_account(self, exchange: str, api_key: str | None) -> Account | None:
        if api_key is None:
            return None
        with self.lock:
            return self.accounts.get((exchange, api_key))

    def remove_account(self, exchange: str, api_key: str) -> None:
        with self.lock:
            self.accounts.pop((exchange, api_key), None)

    # -- forced responses --------------------------------------------------------------------
    def force(
        self,
        exchange: str,
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
        *,
        delay_seconds: float = 0.0,
        method: str | None = None,
        path: str | None = None,
    ) -> ForcedResponse:
        """Answer the next `times` matching requests with `status`/`body`/`headers` (after
        `delay_seconds`), skipping all verification. With status=None the request is only delayed,
        then verified and answered normally (a slow or hanging exchange)."""
        _check_exchange(exchange)
        forced = ForcedResponse(exchange, status, body, headers, times, delay_seconds, method, path)
        with self.lock:
            self.forced.append(forced)
        return forced

    def clear_forced(self, exchange: str | None = None) -> None:
        with self.lock:
            self.forced[:] = [f for f in self.forced if exchange is not None and f.exchange != exchange]

    def take_forced(self, exchange: str, method: str, path: str) -> ForcedResponse | None:
        with self.lock:
            for forced in self.forced:
                if forced.matches(exchange, method, path):
                    forced.used += 1
                    return forced
        return None

    # -- reset -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget accounts, forced responses, received requests and the clock offset."""
        with self.lock:
            self.clock_offset_ms = 0.0
            self.accounts.clear()
            self.forced.clear()
            self.received.clear()


def _check_exchange(exchange: str) -> None:
    if exchange not in EXCHANGE_IDS:
        raise ValueError(f"unknown exchange id {exchange!r}; expected one of {EXCHANGE_IDS}")
