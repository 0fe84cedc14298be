"""A budget is "at most `limit` units per `window_s` seconds" under a key; rate strings make lists of them."""

from __future__ import annotations

from dataclasses import dataclass

from limits import parse_many


@dataclass(frozen=True)
class Budget:
    key: str  # e.g. "cred:<id>:1/second"; shared by every replica that uses the same store
    limit: int
    window_s: float
    cost: int = 1

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)


@dataclass(frozen=True)
class Rate:
    limit: int
    window_s: float

    def budget(self, scope: str, cost: int = 1, *, share: float = 1.0) -> Budget:
        # share < 1 keeps headroom (e.g. for cancels); never below one unit.
        limit = max(1, int(self.limit * share))
        return Budget(f"{scope}:{self.limit}/{self.window_s:g}s", limit, self.window_s, cost)


def parse_rates(text: str) -> tuple[Rate, ...]:
    """`"10/second;1200/minute"` -> rates; the `limits` library's syntax, validated on input."""
    return tuple(Rate(item.amount, float(item.get_expiry())) for item in parse_many(text))
