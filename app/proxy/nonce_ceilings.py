"""The database's record of the highest nonce each key has used, so no fresh sequence starts below it.

Nonces follow the clock (app/proxy/nonces.py). A process that starts after the clock was stepped
back, or a Redis that lost the shared sequence, would issue nonces below ones already sent, and
Kraken would refuse the key's every call until the clock caught up. So each nonce issued is noted
here and written behind the call (never waited for: a slow database must not hold a key's calls),
at most `WRITES_PER_S` times a second per key and once more at shutdown, and a fresh sequence
starts just above what was written.

Not further above: a sequence that led the clock would get the calls of any other process still
following the clock on the same key refused meanwhile (without Redis, `signvault credentials check`
beside the server), and restarts in a row would add their leads up. What this leaves uncovered is
a crash together with a clock stepped back, when the last nonces were not yet written (a tenth of a
second behind, longer while the database is slow or locked): Kraken refuses the key until the clock
passes them, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import READONLY, table_of, utcnow
from app.proxy.models import NonceCeiling

log = logging.getLogger("signvault.nonces")

WRITES_PER_S = 10  # per key: a Kraken key's calls are paced to a few a second anyway
RETRY_S = 5.0  # after the database did not answer, before asking it again
READ_S = 1.0  # a first call on a key waits this long at most for the record (PostgreSQL that hangs)
CLOSE_S = 2.0  # at shutdown, how long the last writes may take (on SQLite, a write queued behind
# another's lock ends only when SQLite's busy timeout does)
_CEILINGS = table_of(NonceCeiling)


class NonceCeilings:
    """Reading and writing fail open: while the database is away the nonces follow the clock alone,
    as they would without this record, and Kraken's own check stays the last word (it refuses a
    nonce that went back; nothing executes). Refusing every Kraken call instead would turn a
    database hiccup into an outage, for a guard against a rare clock step."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._floors: dict[str, int] = {}  # per key, where this process's sequence may start (read once)
        self._unread_until: dict[str, float] = {}  # a key whose read failed: not asked again before then
        self._latest: dict[str, int] = {}  # per key, the highest nonce noted
        self._written: dict[str, int] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._closing = asyncio.Event()  # set once, at shutdown

    async def floor(self, scope: str, *, fresh: bool = False) -> int:
        """The lowest nonce a fresh sequence on `scope` may use: above the highest written (0 with
        none written, or while the database does not answer). Read once per key, or each time when
        `fresh` (Redis lost the sequence: other replicas may have written since)."""
        if not fresh and scope in self._floors:
            return self._floors[scope]
        if time.monotonic() < self._unread_until.get(scope, 0.0):
            return 0
        try:
            # Read-only: on SQLite a plain BEGIN, which does not queue behind writers (app/db.py).
            async with (asyncio.timeout(READ_S),
                        self._engine.execution_options(**{READONLY: True}).connect() as connection):
                written = await connection.scalar(select(_CEILINGS.c.ceiling).where(_CEILINGS.c.scope == scope))
        except Exception as exc:  # fail open, above
            log.warning("could not read a key's last nonce (%s); its nonces follow the clock", type(exc).__name__)
            self._unread_until[scope] = time.monotonic() + RETRY_S
            return 0
        self._floors[scope] = floor = int(written) + 1 if written else 0
        return floor

    def note(self, scope: str, nonce: int) -> None:
        """`nonce` was issued: have it written, soon and without waiting."""
        if nonce <= self._latest.get(scope, 0):
            return
        self._latest[scope] = nonce
        if scope not in self._writers and not self._closing.is_set():
            self._writers[scope] = asyncio.create_task(self._write_behind(scope))

    async def close(self) -> None:
        """Write what is noted and not yet written (a restart then starts above it). Writers finish
        the write under way rather than being cancelled in it: a SQLite write cancelled mid-query
        leaves its connection closing in a task that can outlive the engine and hold up exit."""
        self._closing.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_S):
                for writer in [w for w in self._writers.values() if not w.done()]:
                    await asyncio.shield(writer)
                for scope, nonce in self._latest.items():
                    if nonce > self._written.get(scope, 0) and await self.raise_to(scope, nonce):
                        self._written[scope] = nonce
        for writer in self._writers.values():
            writer.cancel()  # only those still waiting on the database after CLOSE_S

    async def _write_behind(self, scope: str) -> None:
        """One writer per key at a time: nonces noted while it writes go in its next write. At
        shutdown it stops after its write (close() writes what is left)."""
        try:
            while not self._closing.is_set() and (nonce := self._latest[scope]) > self._written.get(scope, 0):
                if await self.raise_to(scope, nonce):
                    self._written[scope] = nonce
                    await self._pause(1 / WRITES_PER_S)
                else:
                    await self._pause(RETRY_S)
        finally:
            if self._writers.get(scope) is asyncio.current_task():
                del self._writers[scope]

    async def _pause(self, seconds: float) -> None:
        """Sleep between writes, cut short at shutdown."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    async def raise_to(self, scope: str, nonce: int) -> bool:
        """Record `nonce` as `scope`'s highest unless a higher one is (another replica's). False if the
        database did not take it."""
        try:
            try:
                await self._raise(scope, nonce)
            except IntegrityError:  # another replica inserted the row first: raise that one
                await self._raise(scope, nonce)
        except Exception as exc:  # fail open, above
            log.warning("could not record a key's last nonce (%s)", type(exc).__name__)
            return False
        return True

    async def _raise(self, scope: str, nonce: int) -> None:
        async with self._engine.begin() as connection:
            raised = await connection.execute(update(_CEILINGS).where(
                _CEILINGS.c.scope == scope, _CEILINGS.c.ceiling < nonce).values(ceiling=nonce, updated_at=utcnow()))
            if raised.rowcount:
                return
            if await connection.scalar(select(_CEILINGS.c.scope).where(_CEILINGS.c.scope == scope)) is None:
                await connection.execute(insert(_CEILINGS).values(scope=scope, ceiling=nonce, updated_at=utcnow()))
