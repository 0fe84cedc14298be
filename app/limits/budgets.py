"""A budget is "at most `limit` units per `window_s` seconds" under a key; rate strings make lists of them."""

from __future__ import annotations

from dataclasses import dataclass

from limits import parse_many


@dataclass(frozen=True)
class Budget:
    key: str  # e.g. "cred:<id>:1s"; shared by every replica that uses the same store
    limit: int
    window_s: float
    cost: int = 1
    # Counted as the exchange counts it (Binance's new orders): one count per interval of the
    # clock's (a day's from 00:00 UTC), which the exchange's reports set, lower as well as higher.
    # A sliding log that only ever rises refuses, for up to a day, orders the exchange would take.
    exact: bool = False

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)


def report_grace_s(window_s: float) -> float:
    """How far into an exact budget's interval a report must have been asked for to be used: one on
    an order sent earlier may be of the interval before (clocks a little apart, or a slow send)."""
    return min(1.0, window_s / 10)


@dataclass(frozen=True)
class Rate:
    limit: int
    window_s: float

    def budget(self, scope: str, cost: int = 1, *, share: float = 1.0, exact: bool = False) -> Budget:
        # share < 1 keeps headroom (e.g. for cancels); never below one unit.
        limit = max(1, int(self.limit * share))
        # Keyed by scope and window, not by limit: a limit changed at run time (or another replica's,
        # mid-deploy) counts against what the window has already spent, instead of a fresh window.
        return Budget(f"{scope}:{self.window_s:g}s", limit, self.window_s, cost, exact)


def parse_rates(text: str) -> tuple[Rate, ...]:
    """`"10/second;1200/minute"` -> rates; the `limits` library's syntax, validated on input. Two
    limits on one window would share its count: the lower one holds."""
    lowest: dict[float, int] = {}
    for item in parse_many(text):
        window = float(item.get_expiry())
        lowest[window] = min(item.amount, lowest.get(window, item.amount))
    return tuple(Rate(limit, window) for window, limit in lowest.items())
