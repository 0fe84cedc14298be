"""Busy polling (SIGNVAULT_BUSY_POLL): the event loop spins instead of sleeping between events.

An idle worker sleeps in the kernel until a socket is ready, and each request that arrives then
pays for the wake-up; on a virtual machine that is an exit to the hypervisor and back, with caches
gone cold. In bench/, one worker pinned to its core on a 2-core VM, 2 interleaved runs each:
added p50 at a fixed 1,000 req/s 0.70-0.74 -> 0.44-0.48 ms; 64 bots against a 20 ± 10 ms
exchange, GET 2.7-3.1 -> 1.4-2.0 ms and POST 2.0-2.7 -> 1.5-1.9 ms. Saturated throughput is the
same. The price is the worker's core, busy all the time even with no traffic: only for a worker
with a core of its own.
"""

from __future__ import annotations

import asyncio


async def spin() -> None:
    """Keep the loop's ready queue non-empty, so it polls its sockets without waiting."""
    while True:
        await asyncio.sleep(0)
