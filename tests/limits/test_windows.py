"""The sliding-window stores, in memory and in Redis: exact admission, waits, cooldowns, reconciling."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.limits.budgets import Budget, parse_rates
from app.limits.memory import MemoryWindows
from app.limits.redis_store import RedisWindows
from tests.limits.conftest import redis_client


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_strings() -> None:
    rates = parse_rates("10/second;1200/minute")
    assert [(r.limit, r.window_s) for r in rates] == [(10, 1.0), (1200, 60.0)]
    assert rates[1].budget("ip", share=0.9).limit == 1080


def test_a_changed_limit_counts_what_its_window_has_spent() -> None:
    # The window is the scope's and its length's: lowering 5/minute to 4/minute after 5 calls (an
    # admin's PATCH, or a replica on the new setting mid-deploy) must not open a fresh window.
    store = MemoryWindows(FakeClock())
    before, after = parse_rates("5/minute")[0].budget("cred:c"), parse_rates("4/minute")[0].budget("cred:c")
    assert before.key == after.key
    assert [asyncio.run(store.acquire([before], []))[0] for _ in range(5)] == [0.0] * 5
    assert asyncio.run(store.acquire([after], []))[0] > 0


def test_two_limits_on_one_window_keep_the_lower() -> None:
    assert [(r.limit, r.window_s) for r in parse_rates("10/second;5/second;100/minute")] == [(5, 1.0), (100, 60.0)]


class TestMemory:
    def test_admits_exactly_the_limit_then_says_how_long_to_wait(self) -> None:
        clock = FakeClock()
        store = MemoryWindows(clock)
        budget = Budget("k", 5, 1.0)
        results = [asyncio.run(store.acquire([budget], [])) for _ in range(8)]
        assert [w for w, _ in results].count(0.0) == 5
        assert results[-1] == (pytest.approx(1.0), "k")
        clock.now += 0.5
        assert asyncio.run(store.acquire([budget], []))[0] == pytest.approx(0.5)
        clock.now += 0.5
        assert asyncio.run(store.acquire([budget], [])) == (0.0, None)

    def test_cooldowns_that_are_over_are_dropped_once_there_are_many(self) -> None:
        """An endpoint's cooldown is named by a path, which may carry an order's id: memory stays bounded."""
        clock = FakeClock()
        store = MemoryWindows(clock)
        store.hold_cooldown("long", 3600.0)
        for n in range(5000):
            store.hold_cooldown(f"gate:endpoint:c:DELETE:/api/v4/spot/orders/{n}:throttle", 1.0)
            clock.now += 0.01
        assert len(store._cooldowns) < 1100
        assert store.running_cooldowns().keys() >= {"long"}
        assert asyncio.run(store.cooldown_left("long")) > 3500

    def test_all_or_nothing_across_budgets(self) -> None:
        store = MemoryWindows(FakeClock())
        tight, loose = Budget("tight", 1, 10.0), Budget("loose", 100, 10.0)
        assert asyncio.run(store.acquire([loose, tight], []))[0] == 0
        assert asyncio.run(store.acquire([loose, tight], []))[1] == "tight"
        assert asyncio.run(store.acquire([Budget("loose", 2, 10.0)], []))[0] == 0  # loose counted once only

    def test_weights_and_reconcile(self) -> None:
        store = MemoryWindows(FakeClock())
        weight = Budget("ip", 100, 60.0, cost=20)
        assert asyncio.run(store.acquire([weight], []))[0] == 0
        asyncio.run(store.reconcile(weight, 95))  # the exchange counts traffic we did not send
        assert asyncio.run(store.acquire([weight], []))[0] > 0

    def test_cooldowns_extend_never_shorten(self) -> None:
        clock = FakeClock()
        store = MemoryWindows(clock)
        asyncio.run(store.cool_down("binance", 120))
        asyncio.run(store.cool_down("binance", 5))
        assert asyncio.run(store.acquire([], ["binance"])) == (pytest.approx(120), "binance")
        clock.now += 121
        assert asyncio.run(store.acquire([], ["binance"])) == (0.0, None)


class TestExactCounts:
    """Binance's order counts: one count per interval of the clock's (a day's from 00:00 UTC), which
    the exchange's reports set, lower when orders fill."""

    @staticmethod
    def day_before_midnight() -> tuple[FakeClock, MemoryWindows, Budget]:
        wall = FakeClock()
        wall.now = 86400.0 * 20_000 - 400  # 400 s before midnight UTC
        return wall, MemoryWindows(FakeClock(), wall=wall), Budget("orders:c@spot:86400s", 3, 86400.0, exact=True)

    def test_the_count_starts_afresh_with_the_exchanges_next_interval(self) -> None:
        wall, store, day = self.day_before_midnight()
        assert [asyncio.run(store.acquire([day], []))[0] for _ in range(3)] == [0.0] * 3
        assert asyncio.run(store.acquire([day], [])) == (pytest.approx(400.0), day.key)  # not a day
        wall.now += 401
        assert asyncio.run(store.acquire([day], [])) == (0.0, None)

    def test_a_report_sets_the_count_lower_or_higher(self) -> None:
        wall = FakeClock()
        wall.now += 5  # 5 s into a 10 s interval
        store = MemoryWindows(FakeClock(), wall=wall)
        budget = Budget("orders:c@spot:10s", 10, 10.0, exact=True)
        for _ in range(10):
            assert asyncio.run(store.acquire([budget], []))[0] == 0
        assert asyncio.run(store.acquire([budget], []))[0] > 0
        asyncio.run(store.reconcile(budget, 2))  # eight of them filled
        assert [asyncio.run(store.acquire([budget], []))[0] for _ in range(9)] == [0.0] * 8 + [pytest.approx(5.0)]
        asyncio.run(store.reconcile(budget, 9))  # another key of the account sent orders
        assert asyncio.run(store.acquire([budget], []))[0] == 0
        assert asyncio.run(store.acquire([budget], []))[0] > 0

    def test_a_report_on_a_request_admitted_in_an_earlier_interval_is_not_used(self) -> None:
        """It may be of that interval: yesterday's 3 must not fill today's count. Nor may one sent in
        the interval's first second (clocks a little apart)."""
        wall, store, day = self.day_before_midnight()
        wall.now += 405
        asyncio.run(store.reconcile(day, 3, age_s=406.0))
        asyncio.run(store.reconcile(day, 3, age_s=4.5))
        assert asyncio.run(store.acquire([day], [])) == (0.0, None)
        asyncio.run(store.reconcile(day, 3, age_s=3.5))
        assert asyncio.run(store.acquire([day], []))[0] > 0

    def test_orders_in_flight_count_in_the_interval_they_may_land_in(self) -> None:
        """Admitted before midnight and not yet answered: Binance may count them in the new day."""
        wall, store, day = self.day_before_midnight()
        wall.now += 401
        assert asyncio.run(store.acquire([day], [], {day.key: 2})) == (0.0, None)
        assert asyncio.run(store.acquire([day], [], {day.key: 2}))[0] > 0

    def test_a_report_that_may_be_stale_only_raises(self) -> None:
        wall = FakeClock()
        wall.now += 5
        store = MemoryWindows(FakeClock(), wall=wall)
        budget = Budget("orders:c@spot:10s", 10, 10.0, exact=True)
        asyncio.run(store.reconcile(budget, 6))
        asyncio.run(store.reconcile(budget, 2, lower=False))
        asyncio.run(store.reconcile(budget, 8, lower=False))
        assert [asyncio.run(store.acquire([budget], []))[0] for _ in range(3)] == [0.0, 0.0, pytest.approx(5.0)]

    def test_a_sliding_budget_is_never_lowered(self) -> None:
        store = MemoryWindows(FakeClock())
        weight = Budget("ip", 3, 60.0)
        for _ in range(3):
            asyncio.run(store.acquire([weight], []))
        asyncio.run(store.reconcile(weight, 0))
        assert asyncio.run(store.acquire([weight], []))[0] > 0

    def test_redis_counts_the_same(self, redis_url: str, redis_prefix: str) -> None:
        async def scenario() -> None:
            async with redis_client(redis_url, redis_prefix) as one, redis_client(redis_url, redis_prefix) as two:
                a, b = RedisWindows(one, redis_prefix), RedisWindows(two, redis_prefix)
                day = Budget("orders:c@spot:86400s", 10, 86400.0, exact=True)
                for store in [a, b] * 5:
                    assert (await store.acquire([day], []))[0] == 0
                wait, blocker = await a.acquire([day], [])
                assert wait == pytest.approx(86400 - time.time() % 86400, abs=1.0)  # until midnight UTC
                assert blocker is not None and "orders:c@spot" in blocker
                await b.reconcile(day, 2, age_s=0.5)
                waits = [(await store.acquire([day], []))[0] for store in [a, b] * 5]
                assert waits[:8] == [0.0] * 8 and waits[8] > 0
                await a.reconcile(day, 0, age_s=86400.0)  # admitted yesterday: not used
                assert (await b.acquire([day], []))[0] > 0
                await a.reconcile(day, 2, age_s=0.5)
                await a.reconcile(day, 4, age_s=0.5, lower=False)  # may be stale: raises, never lowers
                await a.reconcile(day, 1, age_s=0.5, lower=False)
                assert [(await a.acquire([day], []))[0] > 0 for _ in range(7)] == [False] * 6 + [True]
                # What a replica admitted while Redis was away counts in the interval under way, at
                # least: a report may have counted it already.
                fresh = Budget("orders:c@usdm:86400s", 10, 86400.0, exact=True)
                await b.reconcile(fresh, 5, age_s=0.5)
                await a.catch_up([(fresh, [(0.5, 1)] * 7 + [(86400.0, 1)])], {})
                waits = [(await b.acquire([fresh], []))[0] for _ in range(4)]
                assert waits[:3] == [0.0] * 3 and waits[3] > 0
                long = Budget("orders:e@spot:86400s", 1000, 86400.0, exact=True)  # a long outage: one call
                await a.catch_up([(long, [(0.5, 1)] * 600)], {})
                assert (await b.acquire([Budget(long.key, 1000, 86400.0, 400, exact=True)], []))[0] == 0
                assert (await b.acquire([long], []))[0] > 0
                # Orders still in flight from before the interval are counted in it.
                other = Budget("orders:d@spot:86400s", 10, 86400.0, exact=True)
                assert (await a.acquire([other], [], {other.key: 9}))[0] == 0
                assert (await b.acquire([other], []))[0] > 0

        asyncio.run(scenario())


class TestRedis:
    def test_two_replicas_admit_exactly_the_limit_together(self, redis_url: str, redis_prefix: str) -> None:
        async def scenario() -> list[float]:
            async with redis_client(redis_url, redis_prefix) as one, redis_client(redis_url, redis_prefix) as two:
                a, b = RedisWindows(one, redis_prefix), RedisWindows(two, redis_prefix)
                budget = Budget("shared", 25, 10.0)
                results = await asyncio.gather(*(s.acquire([budget], []) for s in [a, b] * 50))
                return [w for w, _ in results]

        waits = asyncio.run(scenario())
        assert waits.count(0.0) == 25
        assert all(0 < w <= 10 for w in waits if w)

    def test_cooldowns_weights_and_reconcile(self, redis_url: str, redis_prefix: str) -> None:
        async def scenario() -> None:
            async with redis_client(redis_url, redis_prefix) as client:
                store = RedisWindows(client, redis_prefix)
                await store.cool_down("binance", 60)
                await store.cool_down("binance", 1)
                wait, blocker = await store.acquire([Budget("x", 10, 1.0)], ["binance"])
                assert 59 < wait <= 60 and blocker.endswith("cd:binance")
                weight = Budget("ip", 100, 60.0, cost=20)
                assert (await store.acquire([weight], []))[0] == 0
                await store.reconcile(weight, 95)
                wait, _ = await store.acquire([weight], [])
                assert 59 < wait <= 60

        asyncio.run(scenario())

    def test_a_refusal_waits_for_the_entries_that_free_enough(self, redis_url: str, redis_prefix: str) -> None:
        """Found past the first page of the log (read a page at a time: a day's log is long)."""
        async def scenario() -> None:
            async with redis_client(redis_url, redis_prefix) as client:
                store = RedisWindows(client, redis_prefix)
                budget = Budget("day", 300, 600.0)
                await store.catch_up([(budget, [(300.0 - i, 1) for i in range(300)])], {})  # aged 300 s .. 1 s
                wait, _ = await store.acquire([Budget("day", 300, 600.0, cost=200)], [])
                assert 498.5 < wait <= 499.0  # when the 200th oldest (101 s old) leaves the window
                wait, _ = await store.acquire([Budget("day", 300, 600.0, cost=400)], [])
                assert wait == 600.0  # more than the window holds: a whole window

        asyncio.run(scenario())

    def test_remembers_what_a_window_held_until_it_runs_out(self, redis_url: str, redis_prefix: str) -> None:
        """Where a local share starts if Redis goes away: this replica's last sight of the window."""
        async def scenario() -> None:
            clock = FakeClock()
            async with redis_client(redis_url, redis_prefix) as client:
                store = RedisWindows(client, redis_prefix, clock)
                weight = Budget("ip", 100, 60.0, cost=3)
                for _ in range(2):
                    assert (await store.acquire([weight], []))[0] == 0
                clock.now += 10
                assert store.last_seen("ip") == (6, 10.0)
                assert store.last_seen("ip") is None  # a share starts from it once
                assert (await store.acquire([weight], []))[0] == 0
                clock.now += 60
                assert store.last_seen("ip") is None
                full = Budget("full", 6, 60.0, cost=3)
                for _ in range(2):
                    assert (await store.acquire([full], []))[0] == 0
                store.last_seen("full")
                assert (await store.acquire([full], []))[0] > 0
                assert store.last_seen("full") == (6, 0.0)  # a refusal says how full the window is too

        asyncio.run(scenario())
