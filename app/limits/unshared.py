"""What this replica admitted on its local share while Redis was away, kept until Redis counts it too."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from app.limits.budgets import Budget

# A budget and its admissions as (seconds ago, cost), oldest first.
Admissions = tuple[Budget, list[tuple[float, int]]]


class Unshared:
    """Per window, the admissions younger than it: at most a local share of the limit each."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, tuple[Budget, deque[tuple[float, int]]]] = {}

    def __bool__(self) -> bool:
        return bool(self._logs)

    def add(self, budgets: Sequence[Budget]) -> None:
        now = self._clock()
        for budget in budgets:
            log = self._logs.setdefault(budget.key, (budget, deque()))[1]
            while log and log[0][0] <= now - budget.window_s:
                log.popleft()
            log.append((now, budget.cost))

    def take(self) -> list[Admissions]:
        """Every window's admissions still inside it; forgotten here."""
        now, logs = self._clock(), self._logs
        self._logs = {}
        taken = [(budget, [(now - at, cost) for at, cost in log if at > now - budget.window_s])
                 for budget, log in logs.values()]
        return [(budget, admitted) for budget, admitted in taken if admitted]

    def give_back(self, taken: Sequence[Admissions]) -> None:
        """Admissions `take` returned that Redis did not count; older than any added since."""
        now = self._clock()
        for budget, admitted in taken:
            log = self._logs.setdefault(budget.key, (budget, deque()))[1]
            log.extendleft((now - age, cost) for age, cost in reversed(admitted))
