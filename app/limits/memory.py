"""Sliding-window logs in process memory: exact, for a single replica (or when Redis is away). An
exact budget is a count per interval of the clock's instead, as the exchange keeps it."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from app.limits.budgets import Budget, report_grace_s

PRUNE_FROM = 1024  # cooldowns held before the ones that are over are dropped


class MemoryWindows:
    """Each key holds (time, cost) entries younger than its window; admission is all-or-nothing.

    Runs on the event loop without awaiting, so each call is atomic within the process.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall  # whose intervals exact budgets count in: UTC, as the exchange's
        self._entries: dict[str, deque[tuple[float, int]]] = {}
        self._sums: dict[str, int] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # an exact budget's (interval, units)
        self._cooldowns: dict[str, float] = {}
        self._prune_at = PRUNE_FROM

    def _evict(self, key: str, horizon: float) -> None:
        entries = self._entries.get(key)
        while entries and entries[0][0] <= horizon:
            self._sums[key] -= entries.popleft()[1]

    def _count(self, budget: Budget, wall: float) -> int:
        """An exact budget's units in the interval under way."""
        interval, units = self._counts.get(budget.key, (-1, 0))
        return units if interval == int(wall // budget.window_s) else 0

    def _wait(self, budget: Budget, now: float, floor: int) -> float:
        """Seconds until `budget.cost` more units fit (0 if they fit now); an exact budget counts at
        least `floor` (orders in flight, perhaps from an interval before: the exchange may count them
        in this one)."""
        if budget.exact:  # the exchange's count starts afresh with its next interval
            wall = self._wall()
            if max(self._count(budget, wall), floor) + budget.cost <= budget.limit:
                return 0.0
            return budget.window_s - wall % budget.window_s
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

    async def acquire(self, budgets: Sequence[Budget], cooldowns: Sequence[str],
                      floors: Mapping[str, int] | None = None) -> tuple[float, str | None]:
        """(0, None) and recorded when everything fits; else (seconds to wait, what blocked). `floors`:
        the least an exact budget counts, by key."""
        floors = floors or {}
        now = self._clock()
        for key in cooldowns:
            until = self._cooldowns.get(key, 0.0)
            if until > now:
                return until - now, key
        waits = [(self._wait(b, now, floors.get(b.key, 0)), b.key) for b in budgets]
        worst = max(waits, default=(0.0, None))
        if worst[0] > 0:
            return worst
        for budget in budgets:
            if budget.exact:
                wall = self._wall()
                used = max(self._count(budget, wall), floors.get(budget.key, 0))
                self._counts[budget.key] = (int(wall // budget.window_s), used + budget.cost)
                continue
            self._entries.setdefault(budget.key, deque()).append((now, budget.cost))
            self._sums[budget.key] = self._sums.get(budget.key, 0) + budget.cost
        return 0.0, None

    async def reconcile(self, budget: Budget, reported_used: int, *, age_s: float = 0.0,
                        lower: bool = True) -> None:
        """`reported_used` units were spent `age_s` ago (the exchange says so, or Redis did): count at
        least that many, until a window after then. An exact budget counts exactly that many (at least,
        unless `lower`), unless `age_s` ago was not well into the interval under way."""
        if budget.exact:
            wall = self._wall()
            if wall % budget.window_s - age_s >= report_grace_s(budget.window_s):
                units = reported_used if lower else max(reported_used, self._count(budget, wall))
                self._counts[budget.key] = (int(wall // budget.window_s), units)
            return
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
