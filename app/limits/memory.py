"""Sliding-window logs in process memory: exact, for a single replica (or when Redis is away)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

from app.limits.budgets import Budget

PRUNE_FROM = 1024  # cooldowns held before the ones that are over are dropped


class MemoryWindows:
    """Each key holds (time, cost) entries younger than its window; admission is all-or-nothing.

    Runs on the event loop without awaiting, so each call is atomic within the process.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, deque[tuple[float, int]]] = {}
        self._sums: dict[str, int] = {}
        self._cooldowns: dict[str, float] = {}
        self._prune_at = PRUNE_FROM

    def _evict(self, key: str, horizon: float) -> None:
        entries = self._entries.get(key)
        while entries and entries[0][0] <= horizon:
            self._sums[key] -= entries.popleft()[1]

    def _wait(self, budget: Budget, now: float) -> float:
        """Seconds until `budget.cost` more units fit (0 if they fit now)."""
        self._evict(budget.key, now - budget.window_s)
        used = self._sums.get(budget.key, 0)
        need = used + budget.cost - budget.limit
        if need <= 0:
            return 0.0
        freed = 0
        for at, cost in self._entries.get(budget.key, ()):
            freed += cost
            if freed >= need:
                return at + budget.window_s - now
        return budget.window_s  # larger than the whole budget: wait a full window and ask again

    async def acquire(self, budgets: Sequence[Budget], cooldowns: Sequence[str]) -> tuple[float, str | None]:
        """(0, None) and recorded when everything fits; else (seconds to wait, what blocked)."""
        now = self._clock()
        for key in cooldowns:
            until = self._cooldowns.get(key, 0.0)
            if until > now:
                return until - now, key
        waits = [(self._wait(b, now), b.key) for b in budgets]
        worst = max(waits, default=(0.0, None))
        if worst[0] > 0:
            return worst
        for budget in budgets:
            self._entries.setdefault(budget.key, deque()).append((now, budget.cost))
            self._sums[budget.key] = self._sums.get(budget.key, 0) + budget.cost
        return 0.0, None

    async def reconcile(self, budget: Budget, reported_used: int, *, age_s: float = 0.0) -> None:
        """`reported_used` units were spent `age_s` ago (the exchange says so, or Redis did): count at
        least that many, until a window after then."""
        now = self._clock()
        self._evict(budget.key, now - budget.window_s)
        missing = reported_used - self._sums.get(budget.key, 0)
        if missing > 0:
            entries = self._entries.setdefault(budget.key, deque())
            at = now - age_s if not entries else max(now - age_s, entries[-1][0])  # the log stays in time order
            entries.append((at, missing))
            self._sums[budget.key] = self._sums.get(budget.key, 0) + missing

    async def cool_down(self, key: str, seconds: float) -> None:
        self.hold_cooldown(key, seconds)

    def hold_cooldown(self, key: str, seconds: float) -> None:
        """`cool_down` for callers that cannot await (a notice from another replica)."""
        now = self._clock()
        self._cooldowns[key] = max(now + seconds, self._cooldowns.get(key, 0.0))
        if len(self._cooldowns) >= self._prune_at:
            # Over ones go once there are many: an endpoint's cooldown is named by its path, which may
            # carry an order's id. Amortised, each cooldown is looked at a bounded number of times.
            self._cooldowns = {k: until for k, until in self._cooldowns.items() if until > now}
            self._prune_at = max(PRUNE_FROM, 2 * len(self._cooldowns))

    async def cooldown_left(self, key: str) -> float:
        return max(0.0, self._cooldowns.get(key, 0.0) - self._clock())

    def running_cooldowns(self) -> dict[str, float]:
        """Each cooldown not yet over, with its seconds left."""
        now = self._clock()
        return {key: until - now for key, until in self._cooldowns.items() if until > now}


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
