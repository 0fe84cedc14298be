"""The bot a `/proxy` call is for, as the server sees it: whether it has hung up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class ClientGone(Exception):
    """The client hung up before its call was sent: nothing to answer, nothing sent."""


class Caller:
    """Watched only while its call waits for its turn on a key (Kraken's nonce order): a bot that
    gave up meanwhile (its own timeout) may send the order again, so the one it gave up on must not
    go out behind it. Other calls never start the watch and pay nothing for it."""

    __slots__ = ("_receive", "_watch")

    def __init__(self, receive: Callable[[], Awaitable[object]]) -> None:
        self._receive = receive
        self._watch: asyncio.Future[object] | None = None

    def watch(self) -> None:
        """Once the body is read, the server's next message for this request is its disconnect."""
        if self._watch is None:
            self._watch = asyncio.ensure_future(self._receive())
            self._watch.add_done_callback(_retrieved)

    @property
    def gone(self) -> bool:
        watch = self._watch
        if watch is None or not watch.done():
            return False
        if watch.cancelled() or watch.exception() is not None or _is_disconnect(watch.result()):
            return True
        self._watch = None  # a message that is not the disconnect (no server sends one): watch again
        self.watch()
        return False

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()


def _is_disconnect(message: object) -> bool:
    return isinstance(message, dict) and message.get("type") == "http.disconnect"


def _retrieved(watch: asyncio.Future[object]) -> None:
    if not watch.cancelled():
        watch.exception()  # a receive that failed counts as gone; asyncio need not report it
