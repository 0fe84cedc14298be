"""Periodic work a replica does on its own: the egress IP check, forgetting expired Idempotency-Keys
and, if asked, credential checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from app.credentials import repository, service
from app.credentials.models import Credential

log = logging.getLogger("signvault.background")
# Idempotency-Keys are kept 24 hours; each replica forgets the expired ones this often (in batches:
# the same rows whichever replica gets there first).
PURGE_EVERY_S = 3600.0


def start_background_checks(app: FastAPI) -> list[asyncio.Task[None]]:
    settings = app.state.settings
    tasks = []
    if settings.egress_check_interval_s > 0 and settings.egress_echo_url:
        tasks.append(asyncio.create_task(_every(settings.egress_check_interval_s, app.state.egress.check)))
    tasks.append(asyncio.create_task(_every(PURGE_EVERY_S, app.state.idempotency.purge_expired)))
    if settings.check_interval_s > 0:
        tasks.append(asyncio.create_task(_every(settings.check_interval_s, lambda: check_all(app))))
    return tasks


async def _every(seconds: float, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await work()
        except Exception as exc:  # a failed round must not end the loop; the next one may succeed
            log.warning("periodic %s failed (%s)", getattr(work, "__qualname__", "work"), type(exc).__name__)
        await asyncio.sleep(seconds)


async def check_all(app: FastAPI) -> None:
    """Check every enabled credential and store the result, one at a time (paced like any call).
    Each is read again just before its check: a round over many keys takes a while, and a key
    disabled, deleted or replaced meanwhile is not sent to the exchange, nor its result stored."""
    async with app.state.readonly_sessionmaker() as session:
        ids = [c.id for c in await repository.list_all(session) if c.enabled]
    signing = app.state.signing
    for credential_id in ids:
        async with app.state.readonly_sessionmaker() as session:
            credential = await session.get(Credential, credential_id)
        if credential is None or not credential.enabled:
            continue
        try:
            result = await signing.check(credential, await signing.keys.get(credential))
        except Exception as exc:  # a credential that cannot be opened is reported, not fatal
            log.warning("periodic check of %s failed: %s", credential.label, type(exc).__name__)
            continue
        async with app.state.sessionmaker() as session, session.begin():
            await service.record_check(session, credential.id, result, credential.active_version)
