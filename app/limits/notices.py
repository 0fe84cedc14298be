"""Cooldowns told to the other replicas through PostgreSQL while Redis, which shares them otherwise,
is away.

Without it a 429 or an IP ban seen by one replica during a Redis outage reached each of the others
only through a refused call of its own: one more request per replica into a ban, which exchanges
answer by making the ban longer. PostgreSQL's LISTEN/NOTIFY reaches every replica within
milliseconds, on a connection of this module's own; a notice lost (PostgreSQL away too) costs what
it cost before.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from app.exchanges.base import MAX_COOLDOWN_S
from app.tasks import stop

log = logging.getLogger("signvault.limits")

RECONNECT_S = 1.0
SEND_TIMEOUT_S = 2.0  # a notice goes out on the answer's way back to a bot: never wait long for it
MAX_KEY_LENGTH = 300

# (cooldown key, seconds left), for a replica to hold as its own.
Heard = Callable[[str, float], None]


def channel_for(prefix: str) -> str:
    """One channel per deployment (its Redis prefix), in a name PostgreSQL takes whatever the prefix."""
    return f"signvault_cooldowns_{hashlib.sha256(prefix.encode()).hexdigest()[:16]}"


def notice(key: str, seconds: float) -> str:
    return f"{key} {seconds:.3f}"


def parse_notice(payload: str) -> tuple[str, float] | None:
    """A notice as sent by `notice`, or None: anything else on the channel is ignored."""
    key, _, seconds_text = payload.rpartition(" ")
    try:
        seconds = float(seconds_text)
    except ValueError:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or " " in key:
        return None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_COOLDOWN_S:
        return None
    return key, seconds


class CooldownNotices:
    def __init__(self, database_url: str, channel: str, heard: Heard) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self._heard = heard
        self._connection: Any | None = None
        self._sending = asyncio.Lock()  # one statement at a time on the connection
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        await stop(self._task)

    async def publish(self, key: str, seconds: float) -> None:
        """Tell every replica, this one too (it holds the cooldown already)."""
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S), self._sending:
                await connection.execute("SELECT pg_notify($1, $2)", self._channel, notice(key, seconds))
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("could not tell the other replicas of a cooldown (%s)", type(exc).__name__)

    def _on_notice(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_notice(payload)
        if parsed is not None:
            self._heard(*parsed)

    async def _listen(self) -> None:
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
                try:
                    connection.add_termination_listener(lambda _, lost=lost: lost.set())
                    await connection.add_listener(self._channel, self._on_notice)
                    self._connection = connection
                    self.listening.set()
                    await lost.wait()
                finally:
                    self._connection = None
                    self.listening.clear()
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            except Exception as exc:  # whatever it is, the loop goes on: notices are best effort
                log.warning("cooldown notices from other replicas lost (%s); retrying", type(exc).__name__)
            await asyncio.sleep(RECONNECT_S)
