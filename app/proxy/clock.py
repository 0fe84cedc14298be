"""The exchange's clock as signvault sees it: local time plus an offset learned from the exchange.

A bot whose host drifts, or an exchange whose clock does, otherwise earns "timestamp outside
recvWindow". The offset comes from the exchange's server-time endpoint (midpoint of the round
trip), refreshed when stale and at once after the exchange refuses a timestamp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("signvault.clock")

REFRESH_AFTER_S = 300.0
# The host's clock stepped (NTP, an operator, a resumed VM) if wall time moved this much more or less
# than monotonic time since the offset was learnt; a slewing clock moves ~0.15 s in REFRESH_AFTER_S.
STEP_MS = 500
DATE_RESOLUTION_MS = 1500  # Date is whole seconds: ±1 s, plus half a round trip

# Asks the exchange for its time: returns (server ms, local ms before, local ms after), or None.
TimeProbe = Callable[[], Awaitable[tuple[int, int, int] | None]]


def local_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Offset:
    ms: int = 0
    synced_at: float = 0.0  # monotonic seconds; 0 = never
    wall_minus_monotonic_ms: int = 0  # when synced_at was set


class ExchangeClock:
    """Offsets per (exchange, origin); one sync in flight per key, the rest wait for it."""

    def __init__(self, now_ms: Callable[[], int] = local_ms,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now_ms = now_ms
        self._monotonic = monotonic
        self._offsets: dict[str, _Offset] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _wall_minus_monotonic_ms(self) -> int:
        return self._now_ms() - int(self._monotonic() * 1000)

    def _offset(self, ms: int, synced_at: float) -> _Offset:
        return _Offset(ms, synced_at, self._wall_minus_monotonic_ms())

    def now_ms(self, key: str) -> int:
        offset = self._offsets.get(key)
        return self._now_ms() + (offset.ms if offset else 0)

    def offset_ms(self, key: str) -> int | None:
        offset = self._offsets.get(key)
        return offset.ms if offset and offset.synced_at else None

    def is_stale(self, key: str) -> bool:
        """Never synced, synced too long ago, or the host's clock stepped since: an offset learnt
        before a step is off by the step (an exchange that says why it refuses a timestamp is
        resynced then; Coinbase's bare 401 does not say)."""
        offset = self._offsets.get(key)
        return (offset is None or self._monotonic() - offset.synced_at > REFRESH_AFTER_S
                or abs(self._wall_minus_monotonic_ms() - offset.wall_minus_monotonic_ms) > STEP_MS)

    def learn(self, key: str, server_ms: int, before: int, after: int) -> None:
        """Adopt an offset seen in passing (an HTTP Date header), for exchanges with no time endpoint.

        Date has whole-second resolution, so a known offset is only replaced when they disagree by
        more than that: a coarse reading must not undo a precise one.
        """
        offset = server_ms - (before + after) // 2
        known = self._offsets.get(key)
        if known is None or abs(known.ms - offset) > DATE_RESOLUTION_MS:
            self._offsets[key] = self._offset(offset, self._monotonic())

    async def sync(self, key: str, probe: TimeProbe, *, force: bool = False) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not force and not self.is_stale(key):
                return  # someone else synced while we waited
            answer = await probe()
            if answer is None:
                # Keep the old offset; try again in 5 s rather than on every request.
                known = self._offsets.get(key)
                self._offsets[key] = self._offset(known.ms if known else 0,
                                                  self._monotonic() - REFRESH_AFTER_S + 5)
                return
            server, before, after = answer
            offset = server - (before + after) // 2
            self._offsets[key] = self._offset(offset, self._monotonic())
            if abs(offset) > 1000:
                log.info("clock offset for %s is %d ms", key, offset)
