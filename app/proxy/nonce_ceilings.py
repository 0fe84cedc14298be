"""The database's record of how far each key's nonces may have gone, so no restart goes below it.

Nonces follow the clock (app/proxy/nonces.py). A process that starts after the clock was stepped
back, or a Redis that lost the shared sequence, would issue nonces below ones already sent, and
Kraken would refuse the key's every call until the clock caught up. So a process writes a ceiling
ahead of the nonces it issues, one write per `RESERVE_US` of them rather than one per call, and the
next process (or the shared sequence, once lost) starts above the highest ceiling written.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import table_of, utcnow
from app.proxy.models import NonceCeiling

log = logging.getLogger("signvault.nonces")

RESERVE_US = 60_000_000  # a ceiling covers a minute of clock-paced nonces: one write a minute per busy key
TIMEOUT_S = 2.0  # a database that does not answer by then is taken as away (see NonceCeilings)
_CEILINGS = table_of(NonceCeiling)


class NonceCeilings:
    """Reads and raises the ceilings. Both fail open: while the database is away the nonces follow the
    clock alone, as they would without this record, and Kraken's own check stays the last word (it
    refuses a nonce that went back; nothing executes). Refusing every Kraken call instead would turn a
    database hiccup into an outage for a guard against a rare clock step."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, scope: str) -> int:
        """The highest ceiling written for `scope`; 0 if none was, or if the database did not answer."""
        try:
            async with asyncio.timeout(TIMEOUT_S), self._engine.connect() as connection:
                ceiling = await connection.scalar(select(_CEILINGS.c.ceiling).where(_CEILINGS.c.scope == scope))
        except Exception as exc:  # fail open, above
            log.warning("could not read a key's nonce ceiling (%s); its nonces follow the clock", type(exc).__name__)
            return 0
        return int(ceiling or 0)

    async def raise_to(self, scope: str, ceiling: int) -> bool:
        """Record that `scope`'s nonces may go up to `ceiling`; never lowers one a replica wrote.
        False if the database did not take it."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                try:
                    await self._raise(scope, ceiling)
                except IntegrityError:  # another replica inserted the row first: raise that one
                    await self._raise(scope, ceiling)
        except Exception as exc:  # fail open, above
            log.warning("could not record a key's nonce ceiling (%s)", type(exc).__name__)
            return False
        return True

    async def _raise(self, scope: str, ceiling: int) -> None:
        async with self._engine.begin() as connection:
            raised = await connection.execute(update(_CEILINGS).where(
                _CEILINGS.c.scope == scope, _CEILINGS.c.ceiling < ceiling).values(ceiling=ceiling, updated_at=utcnow()))
            if raised.rowcount:
                return
            if await connection.scalar(select(_CEILINGS.c.scope).where(_CEILINGS.c.scope == scope)) is None:
                await connection.execute(insert(_CEILINGS).values(scope=scope, ceiling=ceiling, updated_at=utcnow()))
