"""The client cache: one load per token however many wait, refresh before expiry, clear wins over loads."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from app.cache.clients import ClientCache
from app.clients.models import Client
from app.errors import NotAuthenticated


class CountingLoader:
    def __init__(self, *, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.calls = 0
        self.gate = gate
        self.fail = fail

    async def __call__(self) -> Client:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise NotAuthenticated("the client token is not valid")
        return Client(id=f"c{self.calls}", name=f"bot-{self.calls}")


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def sync() -> None:
        asyncio.run(test())
    return sync


@run
async def test_concurrent_misses_share_one_load() -> None:
    cache, gate = ClientCache(), asyncio.Event()
    load = CountingLoader(gate=gate)
    waiters = [asyncio.create_task(cache.get("h", load)) for _ in range(64)]
    await asyncio.sleep(0)
    gate.set()
    clients = await asyncio.gather(*waiters)
    assert load.calls == 1
    assert {c.id for c in clients} == {"c1"}
    assert (await cache.get("h", load)).id == "c1" and load.calls == 1  # and it is cached


@run
async def test_an_entry_near_expiry_is_served_while_one_refresh_runs() -> None:
    cache, load = ClientCache(ttl_s=0.2, refresh_s=0.15), CountingLoader()
    await cache.get("h", load)
    await asyncio.sleep(0.08)  # inside the refresh window, still valid
    served = [await cache.get("h", load) for _ in range(10)]
    assert {c.id for c in served} == {"c1"}  # nobody waited for the database
    await asyncio.sleep(0.01)
    assert load.calls == 2  # one background refresh, not ten
    assert (await cache.get("h", load)).id == "c2"


@run
async def test_a_failed_refresh_drops_the_entry_so_revocation_is_seen() -> None:
    cache, load = ClientCache(ttl_s=0.2, refresh_s=0.15), CountingLoader()
    await cache.get("h", load)
    await asyncio.sleep(0.08)
    load.fail = True
    await cache.get("h", load)  # still valid: served, and the refresh finds the token revoked
    await asyncio.sleep(0.01)
    with pytest.raises(NotAuthenticated):
        await cache.get("h", load)


@run
async def test_a_failed_load_raises_for_every_waiter_and_caches_nothing() -> None:
    cache, gate = ClientCache(), asyncio.Event()
    load = CountingLoader(gate=gate, fail=True)
    waiters = [asyncio.create_task(cache.get("h", load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, NotAuthenticated) for r in results) and load.calls == 1
    load.fail, load.gate = False, None
    assert (await cache.get("h", load)).id == "c2"


@run
async def test_a_load_begun_before_clear_is_not_stored() -> None:
    cache, gate = ClientCache(), asyncio.Event()
    stale = CountingLoader(gate=gate)
    pending = asyncio.create_task(cache.get("h", stale))
    await asyncio.sleep(0)
    cache.clear()  # e.g. the client was revoked meanwhile
    gate.set()
    await pending
    fresh = CountingLoader()
    assert (await cache.get("h", fresh)).id == "c1" and fresh.calls == 1  # loaded again, not the stale copy


@run
async def test_one_waiter_giving_up_does_not_cancel_the_load_for_others() -> None:
    cache, gate = ClientCache(), asyncio.Event()
    load = CountingLoader(gate=gate)
    impatient = asyncio.create_task(cache.get("h", load))
    patient = asyncio.create_task(cache.get("h", load))
    await asyncio.sleep(0)
    impatient.cancel()
    gate.set()
    assert (await patient).id == "c1"
