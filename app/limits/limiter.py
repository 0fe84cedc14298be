"""Admission in front of every exchange call: own limits, exchange cooldowns, and what to do without Redis."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from app import metrics
from app.errors import ProblemError, ServiceUnavailable
from app.limits.budgets import Budget
from app.limits.memory import MemoryWindows, retry_after_header
from app.limits.redis_store import RedisWindows
from app.limits.unshared import Unshared
from app.redis_client import RedisBreaker
from app.redis_client import failures as redis_failures

if TYPE_CHECKING:
    from app.limits.notices import CooldownNotices

log = logging.getLogger("signvault.limits")

OnRedisError = Literal["closed", "local"]
_CATCH_UP_PASSES = 2
_COOLDOWN_PASSES = 3


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Over the rate limit; the request was not sent"


class ExchangeCoolingDown(ProblemError):
    status, slug, title = 429, "exchange-cooling-down", "The exchange asked us to slow down; not sent"


class ExchangeBanned(ProblemError):
    status, slug, title = 503, "exchange-ban", "The exchange has banned the egress IP for now; not sent"


class LimitsUnavailable(ServiceUnavailable):
    slug, title = "limits-unavailable", "The shared rate-limit store is unreachable"


def cooldown_key(exchange: str, scope: str, kind: str) -> str:
    """e.g. binance:ip:ban, okx:key:<credential id>:throttle."""
    return f"{exchange}:{scope}:{kind}"


class Limiter:
    def __init__(self, shared: RedisWindows | None, *, breaker: RedisBreaker | None = None,
                 on_redis_error: OnRedisError = "closed", replicas: int = 1) -> None:
        self.shared = shared
        self.local = MemoryWindows()
        self.on_redis_error = on_redis_error
        self.replicas = max(1, replicas)
        self.breaker = breaker or RedisBreaker(self._ping)
        self.breaker.when_back(self._catch_up)
        self._unshared = Unshared()
        self._cooldowns_opened = 0  # cool_down calls so far: one during a catch-up needs another pass
        # With PostgreSQL: how other replicas hear of a cooldown while Redis cannot tell them.
        self.notices: CooldownNotices | None = None
        # Per exact budget, the units of this replica's orders admitted (or being admitted) and not yet answered:
        # the exchange's report may not count them yet, so they count on top of it. And when the
        # order whose report was last used was admitted (time.monotonic()).
        self._in_flight: dict[str, int] = {}
        self._reported_at: dict[str, float] = {}

    async def admit(self, budgets: Sequence[Budget], cooldowns: Sequence[str], *, exchange: str,
                    trading: bool, scopes: dict[str, str], floors: Mapping[str, int] | None = None) -> None:
        """Record the request in every budget, or raise the refusal (nothing recorded). `floors`: the
        least an exact budget counts, by key."""
        wait, blocker = await self._acquire(budgets, cooldowns, trading=trading, floors=floors)
        if wait <= 0:
            return
        headers = {"Retry-After": retry_after_header(wait)}
        if blocker is not None and blocker.endswith(":ban"):
            metrics.THROTTLED.labels(exchange, "cooldown").inc()
            raise ExchangeBanned(f"{exchange} banned the egress IP; retry after {headers['Retry-After']} s",
                                 headers=headers)
        if blocker is not None and blocker.endswith(":throttle"):
            metrics.THROTTLED.labels(exchange, "cooldown").inc()
            raise ExchangeCoolingDown(f"{exchange} asked us to slow down; retry after {headers['Retry-After']} s",
                                      headers=headers)
        scope = next((name for prefix, name in scopes.items() if blocker and prefix in blocker), "limit")
        metrics.THROTTLED.labels(exchange, scope).inc()
        raise RateLimited(f"the {scope} limit is reached; retry after {headers['Retry-After']} s", headers=headers)

    async def _acquire(self, budgets: Sequence[Budget], cooldowns: Sequence[str], *,
                       trading: bool, floors: Mapping[str, int] | None) -> tuple[float, str | None]:
        if self.shared is None:  # one replica: its own windows, which check its cooldowns first
            return await self.local.acquire(budgets, cooldowns, floors)
        # A cooldown opened on this replica holds even if Redis forgot it or is away.
        for key in cooldowns:
            left = await self.local.cooldown_left(key)
            if left > 0:
                return left, key
        if self.breaker.answering:
            try:
                return await self.shared.acquire(budgets, cooldowns, floors)
            except redis_failures() as exc:
                self._failed(exc)
        if trading and self.on_redis_error == "closed":
            raise LimitsUnavailable("trading is refused until the shared rate-limit store is back",
                                    headers={"Retry-After": "1"})
        shares = await self._shares(self.shared, budgets)
        if any(share.cost > share.limit for share in shares):
            # It would wait for a window that never has room. Letting every replica take one anyway
            # would go over the limit by as much as the replicas times the cost.
            raise LimitsUnavailable("this request costs more than this replica's share of a limit while the shared "
                                    "rate-limit store is unreachable", headers={"Retry-After": "1"})
        wait, blocker = await self.local.acquire(shares, cooldowns, floors)
        if wait <= 0:
            self._unshared.add(budgets)
        return wait, blocker

    async def _shares(self, shared: RedisWindows, budgets: Sequence[Budget]) -> list[Budget]:
        """Each replica takes its share of every limit, so together they still stay under it. A share
        starts with its part of what the shared window held when this replica last used it, or a
        window spanning the outage would admit the limit twice over."""
        shares = []
        for budget in budgets:
            share = Budget(budget.key, max(1, budget.limit // self.replicas), budget.window_s, budget.cost,
                           budget.exact)
            seen = shared.last_seen(budget.key)
            if seen is not None:
                units, age_s = seen
                await self.local.reconcile(share, math.ceil(units / self.replicas), age_s=age_s)
            shares.append(share)
        return shares

    async def _catch_up(self) -> None:
        """Redis answers again: tell it the cooldowns this replica opened meanwhile (a ban then holds
        on every replica) and the requests it admitted (they count against the shared windows).
        Requests go on being admitted locally during each pass, so a second pass takes those; what
        arrives during that one (a round trip's worth) is left uncounted rather than keep Redis
        (and the Kraken nonces that share its breaker) waiting. A cooldown opened during a pass is
        rarer and matters more (a ban must hold on every replica): it gets passes of its own."""
        if self.shared is None:
            return
        windows = 0
        for _ in range(_CATCH_UP_PASSES):
            taken, opened = self._unshared.take(), self._cooldowns_opened
            try:
                await self.shared.catch_up(taken, self.local.running_cooldowns())
            except BaseException:
                self._unshared.give_back(taken)  # a window counted twice at worst, never lost
                raise
            windows += len(taken)
            if not self._unshared:
                break
        self._unshared.take()
        for _ in range(_COOLDOWN_PASSES):
            if self._cooldowns_opened == opened:
                break
            opened = self._cooldowns_opened
            await self.shared.catch_up((), self.local.running_cooldowns())
        if windows:
            log.info("rate-limit store answers again; %d windows now count what was admitted without it", windows)

    async def cool_down(self, key: str, seconds: float) -> None:
        self._cooldowns_opened += 1
        await self.local.cool_down(key, seconds)
        if self.shared is None:
            return
        if self.breaker.answering:
            try:
                await self.shared.cool_down(key, seconds)
                return
            except redis_failures() as exc:
                self._failed(exc)
        if self.notices is not None:  # Redis is told when it is back; the other replicas now
            await self.notices.publish(key, seconds)

    def heard_cooldown(self, key: str, seconds: float) -> None:
        """Another replica opened this cooldown while Redis was away."""
        self.local.hold_cooldown(key, seconds)

    def sent(self, budgets: Sequence[Budget]) -> dict[str, int]:
        """An order is on its way on these exact budgets, its cost on each (an order list or a batch
        counts several); returns the units in flight before it, by key."""
        before = {budget.key: self._in_flight.get(budget.key, 0) for budget in budgets}
        for budget in budgets:
            self._in_flight[budget.key] = before[budget.key] + budget.cost
        return before

    def answered(self, budgets: Sequence[Budget]) -> None:
        for budget in budgets:
            left = self._in_flight.get(budget.key, 0) - budget.cost
            if left > 0:
                self._in_flight[budget.key] = left
            else:
                self._in_flight.pop(budget.key, None)

    async def report(self, budget: Budget, used: int, admitted_at: float | None) -> None:
        """An exact budget's count, as the exchange reports it on the answer to an order admitted at
        `admitted_at` (time.monotonic(); None: not an order's answer). The count becomes that plus
        the orders still in flight; if a report on a later order was used already, this one, which
        may not count that order, only raises it."""
        if admitted_at is None:
            lower, age_s = False, 0.0
        else:
            lower = admitted_at >= self._reported_at.get(budget.key, -math.inf)
            if lower:
                self._reported_at[budget.key] = admitted_at
            age_s = time.monotonic() - admitted_at
        await self.reconcile(budget, used + self._in_flight.get(budget.key, 0), age_s=age_s, lower=lower)

    async def reconcile(self, budget: Budget, used: int, *, age_s: float = 0.0, lower: bool = True) -> None:
        """The exchange says `used` units are spent, as of `age_s` ago (`lower`: see MemoryWindows)."""
        await self.local.reconcile(budget, used, age_s=age_s, lower=lower)
        if self.shared is not None and self.breaker.answering:
            try:
                await self.shared.reconcile(budget, used, age_s=age_s, lower=lower)
            except redis_failures() as exc:
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        if self.breaker.answering:
            log.warning("rate-limit store unreachable (%s)", type(exc).__name__)
        self.breaker.failed()
        metrics.LIMIT_STORE_ERRORS.inc()

    async def _ping(self) -> None:
        if self.shared is not None:
            await self.shared.ping()
