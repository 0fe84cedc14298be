"""The same sliding-window logs in Redis, so every replica draws on one budget.

Each admission is one Lua script: it reads Redis' own clock (replicas' clocks never matter),
checks the cooldowns and every budget, and records the request in all of them or in none.
A window is a sorted set of "id:cost" members scored by time (µs) plus a running sum.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from app.limits.budgets import Budget

_COST_OF = "tonumber(string.match(m, ':(%d+)$'))"

# Drops a window's entries older than `window` and takes their cost off its running sum.
_EVICT = f"""
local function evict(z, s, now, window)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do freed = freed + {_COST_OF} end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
    redis.call('DECRBY', s, freed)
  end
end
"""

_ACQUIRE = _EVICT + f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local budgets = tonumber(ARGV[1])
local cooldowns = tonumber(ARGV[2])
for c = 1, cooldowns do
  local left = redis.call('PTTL', KEYS[2 * budgets + c])
  if left > 0 then return {{0, left * 1000, 2 * budgets + c}} end
end
local wait, blocker = 0, 0
for i = 1, budgets do
  local z, s = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, window, cost = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  evict(z, s, now, window)
  local used = tonumber(redis.call('GET', s) or '0')
  local need = used + cost - limit
  if need > 0 then
    local w = window
    local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    local freed = 0
    for j = 1, #entries, 2 do
      local m = entries[j]
      freed = freed + {_COST_OF}
      if freed >= need then w = tonumber(entries[j + 1]) + window - now break end
    end
    if w > wait then wait, blocker = w, 2 * i - 1 end
  end
end
if wait > 0 then return {{0, wait, blocker}} end
local id = ARGV[3 * budgets + 3]
for i = 1, budgets do
  local z, s = KEYS[2 * i - 1], KEYS[2 * i]
  local window, cost = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  redis.call('ZADD', z, now, id .. ':' .. i .. ':' .. cost)
  redis.call('INCRBY', s, cost)
  local ttl = math.floor(window / 1000) + 1000
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', s, ttl)
end
return {{1, 0, 0}}
"""

_RECONCILE = _EVICT + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local z, s = KEYS[1], KEYS[2]
local window, reported = tonumber(ARGV[1]), tonumber(ARGV[2])
evict(z, s, now, window)
local used = tonumber(redis.call('GET', s) or '0')
if reported > used then
  redis.call('ZADD', z, now, ARGV[3] .. ':0:' .. (reported - used))
  redis.call('INCRBY', s, reported - used)
  local ttl = math.floor(window / 1000) + 1000
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', s, ttl)
end
return used
"""

# Extends a cooldown, never shortens it (a 418 ban must not be cut short by a later 429).
_COOL_DOWN = """
local left = redis.call('PTTL', KEYS[1])
if tonumber(ARGV[1]) > left then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


class RedisWindows:
    def __init__(self, redis: Any, prefix: str) -> None:
        self._prefix = prefix
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._reconcile = redis.register_script(_RECONCILE)
        self._cool_down = redis.register_script(_COOL_DOWN)

    def _keys(self, budget: Budget) -> list[str]:
        base = f"{self._prefix}rl:{budget.key}"
        return [f"{base}:log", f"{base}:sum"]

    async def acquire(self, budgets: Sequence[Budget], cooldowns: Sequence[str]) -> tuple[float, str | None]:
        keys = [k for b in budgets for k in self._keys(b)] + [f"{self._prefix}cd:{c}" for c in cooldowns]
        args: list[Any] = [len(budgets), len(cooldowns)]
        for budget in budgets:
            args += [budget.limit, int(budget.window_s * 1_000_000), budget.cost]
        args.append(uuid.uuid4().hex)
        admitted, wait_us, blocker = await self._acquire(keys=keys, args=args)
        if admitted:
            return 0.0, None
        blocked_by = keys[int(blocker) - 1] if blocker else None
        return int(wait_us) / 1_000_000, blocked_by

    async def ping(self) -> None:
        await self._redis.ping()

    async def reconcile(self, budget: Budget, reported_used: int) -> None:
        await self._reconcile(keys=self._keys(budget),
                              args=[int(budget.window_s * 1_000_000), reported_used, uuid.uuid4().hex])

    async def cool_down(self, key: str, seconds: float) -> None:
        await self._cool_down(keys=[f"{self._prefix}cd:{key}"], args=[max(1, int(seconds * 1000))])

    async def cooldown_left(self, key: str) -> float:
        left = await self._redis.pttl(f"{self._prefix}cd:{key}")
        return max(0.0, int(left) / 1000)
