"""The exchange's clock as signvault keeps it: an offset from the exchange's time, learnt again when
it is old or when the host's own clock has stepped since (an offset learnt before a step is off by
the step, and Coinbase refuses the JWT it signs with a bare 401 that does not say why)."""

from __future__ import annotations

import asyncio

from app.proxy.clock import REFRESH_AFTER_S, ExchangeClock, TimeProbe

KEY = "coinbase@https://api.coinbase.com/api/v3/brokerage/time"


class HostClock:
    """A host's wall clock, which can step, and its monotonic clock, which cannot."""

    def __init__(self) -> None:
        self.wall_ms, self.monotonic_s = 1_700_000_000_000, 1_000.0

    def run(self, seconds: float) -> None:
        self.wall_ms += int(seconds * 1000)
        self.monotonic_s += seconds


def exchange_time(host: HostClock, exchange_ahead_ms: int) -> TimeProbe:
    async def probe() -> tuple[int, int, int]:
        return host.wall_ms + exchange_ahead_ms, host.wall_ms, host.wall_ms

    return probe


def test_a_step_of_the_hosts_clock_makes_the_offset_stale_and_the_next_sync_follows_it() -> None:
    host = HostClock()
    clock = ExchangeClock(lambda: host.wall_ms, lambda: host.monotonic_s)
    exchange_now = host.wall_ms + 2_000
    asyncio.run(clock.sync(KEY, exchange_time(host, 2_000)))
    assert clock.now_ms(KEY) == exchange_now
    host.run(60)
    assert not clock.is_stale(KEY)  # a minute on, nothing stepped
    host.wall_ms += 180_000  # NTP steps the host's clock 3 minutes forward
    assert clock.now_ms(KEY) == exchange_now + 60_000 + 180_000  # what a JWT would now carry: refused
    assert clock.is_stale(KEY)
    asyncio.run(clock.sync(KEY, exchange_time(host, 2_000 - 180_000)))
    assert clock.now_ms(KEY) == exchange_now + 60_000
    assert not clock.is_stale(KEY)


def test_a_slewing_clock_is_not_a_step_and_an_old_offset_is_stale() -> None:
    host = HostClock()
    clock = ExchangeClock(lambda: host.wall_ms, lambda: host.monotonic_s)
    asyncio.run(clock.sync(KEY, exchange_time(host, 0)))
    host.run(REFRESH_AFTER_S - 1)
    host.wall_ms += 150  # NTP slews at most 500 ppm: 0.15 s in that time
    assert not clock.is_stale(KEY)
    host.run(2)
    assert clock.is_stale(KEY)


def test_a_failed_sync_is_tried_again_in_seconds_not_on_every_request() -> None:
    host = HostClock()
    clock = ExchangeClock(lambda: host.wall_ms, lambda: host.monotonic_s)

    async def unanswered() -> tuple[int, int, int] | None:
        return None

    asyncio.run(clock.sync(KEY, unanswered))
    assert not clock.is_stale(KEY)
    host.run(6)
    assert clock.is_stale(KEY)
