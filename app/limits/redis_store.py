"""The same sliding-window logs in Redis, so every replica draws on one budget.

Each admission is one Lua script: it reads Redis' own clock (replicas' clocks never matter),
checks the cooldowns and every budget, and records the request in all of them or in none.
A window is a sorted set of "id:cost" members scored by time (µs) plus a running sum. An exact
budget is two plain keys instead: its count and the interval it is of (Redis' clock's intervals,
which should keep UTC as the exchange's do).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from app.limits.budgets import Budget, report_grace_s
from app.limits.unshared import Admissions

_COST_OF = "tonumber(string.match(m, ':(%d+)$'))"
_WAIT_PAGE = 128  # entries read at a time to find when a refused admission would fit

# What every script does to a window: read Redis' clock in µs; drop the entries older than
# `window` and take their cost off the running sum; keep the log and sum a while past the window.
_WINDOWS = f"""
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function evict(z, s, now, window)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do freed = freed + {_COST_OF} end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
    redis.call('DECRBY', s, freed)
  end
end
local function keep(z, s, window)
  local ttl = math.floor(window / 1000) + 1000
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', s, ttl)
end
-- An exact budget: units counted in the interval under way (keys: the count, and its interval).
local function counted(n, at, interval)
  if tonumber(redis.call('GET', at) or '-1') == interval then return tonumber(redis.call('GET', n) or '0') end
  return 0
end
local function set_count(n, at, interval, units, window)
  local ttl = math.floor(window / 1000) + 1000
  redis.call('SET', n, units, 'PX', ttl)
  redis.call('SET', at, interval, 'PX', ttl)
end
"""

_ACQUIRE = _WINDOWS + f"""
local now = now_us()
local budgets = tonumber(ARGV[1])
local cooldowns = tonumber(ARGV[2])
for c = 1, cooldowns do
  local left = redis.call('PTTL', KEYS[2 * budgets + c])
  if left > 0 then return {{0, left * 1000, 2 * budgets + c}} end
end
local wait, blocker = 0, 0
local spent = {{0, 0, 0}}  -- admitted?, wait, blocker; then each window's sum, refused or not
local exact = {{}}
for i = 1, budgets do
  local z, s = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, window = tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])
  local cost, floor = tonumber(ARGV[4 * i + 1]), tonumber(ARGV[4 * i + 2])
  exact[i] = floor >= 0  -- an exact budget's least count (its orders in flight); -1 for a sliding one
  local used
  if exact[i] then used = math.max(counted(z, s, math.floor(now / window)), floor) else
    evict(z, s, now, window)
    used = tonumber(redis.call('GET', s) or '0')
  end
  spent[3 + i] = used
  local need = used + cost - limit
  if need > 0 and exact[i] then
    -- The exchange's count starts afresh with its next interval.
    if window - now % window > wait then wait, blocker = window - now % window, 2 * i - 1 end
  elseif need > 0 then
    -- The wait ends when the oldest entries that free `need` leave the window: read a page at a
    -- time from the oldest, as a day's log can hold 200,000 and Redis runs nothing else meanwhile.
    -- More than the window ever holds (a cost above the limit) waits a whole window, unread.
    local w, freed, first, found = window, 0, 0, need > used
    while not found do
      local entries = redis.call('ZRANGE', z, first, first + {_WAIT_PAGE - 1}, 'WITHSCORES')
      if #entries == 0 then break end
      for j = 1, #entries, 2 do
        local m = entries[j]
        freed = freed + {_COST_OF}
        if freed >= need then w, found = tonumber(entries[j + 1]) + window - now, true break end
      end
      first = first + {_WAIT_PAGE}
    end
    if w > wait then wait, blocker = w, 2 * i - 1 end
  end
end
if wait > 0 then
  spent[2], spent[3] = wait, blocker
  return spent
end
local id = ARGV[4 * budgets + 3]
spent[1] = 1
for i = 1, budgets do
  local z, s = KEYS[2 * i - 1], KEYS[2 * i]
  local window, cost = tonumber(ARGV[4 * i]), tonumber(ARGV[4 * i + 1])
  if exact[i] then
    spent[3 + i] = spent[3 + i] + cost
    set_count(z, s, math.floor(now / window), spent[3 + i], window)
  else
    redis.call('ZADD', z, now, id .. ':' .. i .. ':' .. cost)
    spent[3 + i] = redis.call('INCRBY', s, cost)
    keep(z, s, window)
  end
end
return spent
"""

# ARGV: window, reported units, id; for an exact budget also how long ago (µs) they were reported, the
# grace (µs) that must lie between the interval's start and then, and whether the report may lower
# the count ('1') or only raise it ('0'). As MemoryWindows.reconcile.
_RECONCILE = _WINDOWS + """
local now = now_us()
local z, s = KEYS[1], KEYS[2]
local window, reported = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[4] then
  if now % window - tonumber(ARGV[4]) >= tonumber(ARGV[5]) then
    local interval = math.floor(now / window)
    if ARGV[6] ~= '1' then reported = math.max(reported, counted(z, s, interval)) end
    set_count(z, s, interval, reported, window)
  end
  return reported
end
evict(z, s, now, window)
local used = tonumber(redis.call('GET', s) or '0')
if reported > used then
  redis.call('ZADD', z, now, ARGV[3] .. ':0:' .. (reported - used))
  redis.call('INCRBY', s, reported - used)
  keep(z, s, window)
end
return used
"""

# Adds what a replica admitted on its own while Redis was away; ARGV: window, id, exact ('1' or '0'),
# (age, cost) pairs. An exact budget counts at least those of the interval under way (all in one
# call): not on top, since reports may have counted them already. The few of a catch-up's second
# pass then count only where they are more; the next report counts them.
_RECORD = _WINDOWS + """
local now = now_us()
local z, s = KEYS[1], KEYS[2]
local window = tonumber(ARGV[1])
if ARGV[3] == '1' then
  local interval, added = math.floor(now / window), 0
  for i = 4, #ARGV - 1, 2 do
    if tonumber(ARGV[i]) <= now % window then added = added + tonumber(ARGV[i + 1]) end
  end
  if added > counted(z, s, interval) then set_count(z, s, interval, added, window) end
  return added
end
evict(z, s, now, window)
local added = 0
for i = 4, #ARGV - 1, 2 do
  local age, cost = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if age < window then
    redis.call('ZADD', z, now - age, ARGV[2] .. ':' .. i .. ':' .. cost)
    added = added + cost
  end
end
if added > 0 then
  redis.call('INCRBY', s, added)
  keep(z, s, window)
end
return added
"""

# Extends a cooldown, never shortens it (a 418 ban must not be cut short by a later 429).
_COOL_DOWN = """
local left = redis.call('PTTL', KEYS[1])
if tonumber(ARGV[1]) > left then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


_RECORD_BATCH = 500  # pairs per script call: a long outage's admissions go over in several
_SEEN_SWEEP_MIN = 1024


class RedisWindows:
    def __init__(self, redis: Any, prefix: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._prefix = prefix
        self._redis = redis
        self._clock = clock
        self._acquire = redis.register_script(_ACQUIRE)
        self._reconcile = redis.register_script(_RECONCILE)
        self._record = redis.register_script(_RECORD)
        self._cool_down = redis.register_script(_COOL_DOWN)
        # What each window held after this replica last admitted through it: (units, when, until).
        # Swept of windows that have run out whenever it doubles, so it stays the size of the live ones.
        self._seen: dict[str, tuple[int, float, float]] = {}
        self._sweep_above = _SEEN_SWEEP_MIN

    def _keys(self, budget: Budget) -> list[str]:
        base = f"{self._prefix}rl:{budget.key}"
        return [f"{base}:count", f"{base}:interval"] if budget.exact else [f"{base}:log", f"{base}:sum"]

    async def acquire(self, budgets: Sequence[Budget], cooldowns: Sequence[str],
                      floors: Mapping[str, int] | None = None) -> tuple[float, str | None]:
        keys = [k for b in budgets for k in self._keys(b)] + [f"{self._prefix}cd:{c}" for c in cooldowns]
        args: list[Any] = [len(budgets), len(cooldowns)]
        for budget in budgets:
            floor = (floors or {}).get(budget.key, 0) if budget.exact else -1
            args += [budget.limit, int(budget.window_s * 1_000_000), budget.cost, floor]
        args.append(uuid.uuid4().hex)
        admitted, wait_us, blocker, *spent = await self._acquire(keys=keys, args=args)
        if spent:  # not when a cooldown refused it, before the windows were read
            self._saw(budgets, spent)
        if admitted:
            return 0.0, None
        blocked_by = keys[int(blocker) - 1] if blocker else None
        return int(wait_us) / 1_000_000, blocked_by

    def _saw(self, budgets: Sequence[Budget], spent: Sequence[int]) -> None:
        now, seen = self._clock(), self._seen
        for budget, units in zip(budgets, spent, strict=True):
            seen[budget.key] = (units, now, now + budget.window_s)
        if len(seen) > self._sweep_above:
            for key in [key for key, (_, _, until) in seen.items() if until <= now]:
                del seen[key]
            self._sweep_above = max(_SEEN_SWEEP_MIN, 2 * len(seen))

    def last_seen(self, key: str) -> tuple[int, float] | None:
        """(units the window held, seconds ago) when this replica last asked Redis about it, if that
        is less than a window ago; forgotten once read. Where a local share starts when Redis is away."""
        units, when, until = self._seen.pop(key, (0, 0.0, 0.0))
        now = self._clock()
        return (units, now - when) if until > now else None

    async def catch_up(self, admitted: Sequence[Admissions], cooldowns: dict[str, float]) -> None:
        """Count what was admitted without Redis ((seconds ago, cost) pairs per window) in the shared
        windows, and open these cooldowns (seconds left) there: one round trip, however many windows."""
        pipe = self._redis.pipeline(transaction=False)
        for key, seconds in cooldowns.items():
            await self.cool_down(key, seconds, client=pipe)
        for budget, pairs in admitted:
            window_us = int(budget.window_s * 1_000_000)
            batch = max(1, len(pairs)) if budget.exact else _RECORD_BATCH  # an exact count takes the max of them all
            for start in range(0, len(pairs), batch):
                args: list[Any] = [window_us, uuid.uuid4().hex, int(budget.exact)]
                for age_s, cost in pairs[start:start + batch]:
                    args += [int(age_s * 1_000_000), cost]
                await self._record(keys=self._keys(budget), args=args, client=pipe)
        await pipe.execute()

    async def ping(self) -> None:
        await self._redis.ping()

    async def reconcile(self, budget: Budget, reported_used: int, *, age_s: float = 0.0,
                        lower: bool = True) -> None:
        """As `MemoryWindows.reconcile`, in the shared windows."""
        args: list[Any] = [int(budget.window_s * 1_000_000), reported_used, uuid.uuid4().hex]
        if budget.exact:
            args += [int(age_s * 1_000_000), int(report_grace_s(budget.window_s) * 1_000_000), int(lower)]
        await self._reconcile(keys=self._keys(budget), args=args)

    async def cool_down(self, key: str, seconds: float, *, client: Any = None) -> None:
        """`client`: a pipeline to queue it on, instead of sending it now."""
        await self._cool_down(keys=[f"{self._prefix}cd:{key}"], args=[max(1, int(seconds * 1000))], client=client)

    async def cooldown_left(self, key: str) -> float:
        left = await self._redis.pttl(f"{self._prefix}cd:{key}")
        return max(0.0, int(left) / 1000)
