"""Stopping a background task: the one chore the listeners, the breaker and the audit writer share."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task`, if there is one, and wait until it has ended (its `finally` blocks ran)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
