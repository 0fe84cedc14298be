"""One request on a connection: its ASGI `receive` and `send`, and the answer framed as HTTP/1.1."""

from __future__ import annotations

import asyncio
import http
import logging
from typing import TYPE_CHECKING, Any

from app.http_syntax import NOT_TOKEN, outside

if TYPE_CHECKING:
    from app.server.connection import HttpConnection

logger = logging.getLogger("uvicorn.error")  # configured, and scrubbed, with uvicorn's own loggers

# What HTTP/1.1 allows in a field name (a token) and in a value: an app that sends anything else
# gets a 500 instead of a response that could split in two. Checked over all names (or values) at
# once: a regular expression search per header was ~38k instructions of a request with an
# exchange's twenty headers (callgrind).
_NOT_VALUE = outside(bytes(b for b in range(256) if b == 9 or 32 <= b < 127 or b > 127))
_PHRASES = {status.value: status.phrase.encode() for status in http.HTTPStatus}
STATUS_LINES = {status: b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES.get(status, b"")) for status in range(100, 600)}
_NO_BODY = frozenset({204, 304})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_DISCONNECT = {"type": "http.disconnect"}
_JOIN_BELOW = 64 * 1024  # a head and a body up to this size go out as one write: one packet, one wake-up


class RequestCycle:
    """Reads the request's body as it arrives and writes the app's answer.

    The head is held until the body's first message, then written with it in one `write`: for the
    usual answer, one syscall and one TCP segment where writing them apart took two of each."""

    __slots__ = (
        "body",
        "body_done",
        "chunked",
        "complete",
        "connection",
        "delivered",
        "disconnected",
        "expect_continue",
        "head",
        "head_only",
        "keep_alive",
        "remaining",
        "scope",
        "started",
        "waiter",
        "written",
    )

    def __init__(self, connection: HttpConnection, scope: dict[str, Any], keep_alive: bool,
                 expect_continue: bool) -> None:
        self.connection = connection
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.body = bytearray()
        self.body_done = False  # the parser has seen the request's end
        self.delivered = False  # and the app has had all of it
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.started = False  # http.response.start received
        self.head = b""
        self.written = False  # any byte of the answer written
        self.complete = False
        self.chunked = False
        self.remaining = 0  # Content-Length still to send
        self.head_only = scope["method"] == "HEAD"

    # From the connection

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def run(self, app: Any) -> None:
        """The app on this request; a failure becomes a 500 while nothing is written, else a close."""
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:  # the task ends here, whatever the app raised
            logger.error("Exception in ASGI application", exc_info=exc)
            self._failed()
        else:
            if not self.complete and not self.disconnected:
                logger.error("ASGI callable returned without %s the response",
                             "completing" if self.started else "starting")
                self._failed()

    def _failed(self) -> None:
        if self.disconnected:
            return
        if self.written:
            self.connection.transport.close()  # part of an answer went out: the rest cannot follow
            return
        self.keep_alive, self.started = False, True
        self.head_only = self.chunked = False
        self.head = self._head(500, [(b"content-type", b"text/plain; charset=utf-8")], b"Internal Server Error")
        self._write(b"Internal Server Error", more=False)

    # ASGI

    async def receive(self) -> dict[str, Any]:
        if self.expect_continue:
            self.expect_continue = False
            if not self.started and not self.connection.transport.is_closing():
                self.connection.transport.write(_CONTINUE)
        while not (self.disconnected or self.complete):
            if self.body or (self.body_done and not self.delivered):
                body = bytes(self.body)
                self.body.clear()
                self.delivered = self.body_done
                self.connection.resume_reading()
                return {"type": "http.request", "body": body, "more_body": not self.body_done}
            # Nothing new: wait for more of the body or, once it is all read, for the disconnect.
            self.connection.resume_reading()
            self.waiter = self.connection.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return _DISCONNECT

    async def send(self, message: dict[str, Any]) -> None:
        connection = self.connection
        if connection.write_paused and not self.disconnected:
            await connection.drained()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
            self.started = True
            self.expect_continue = False
            self.head = self._head(message["status"], message.get("headers", ()), None)
        elif not self.complete:
            if kind != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{kind}'.")
            self._write(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")

    # The answer

    def _head(self, status: int, headers: Any, body: bytes | None) -> bytes:
        line = STATUS_LINES.get(status)
        if line is None:
            raise RuntimeError(f"Invalid HTTP status code {status!r}.")
        names, values = _fields(headers)
        length: bytes | None = None
        chunked = False
        # Scans in C over the names (an exchange's answer has some twenty): a Python loop testing
        # each name was ~9k instructions of a request.
        lengths, codings = names.count(b"content-length"), names.count(b"transfer-encoding")
        if lengths + codings > 1:
            raise RuntimeError("The response is framed twice.")
        if lengths:
            length = values[names.index(b"content-length")]
        elif codings:
            if values[names.index(b"transfer-encoding")].strip().lower() != b"chunked":
                raise RuntimeError("Only chunked transfer coding is written.")
            chunked = True
        if b"connection" in names and b"close" in values[names.index(b"connection")].lower():
            self.keep_alive = False
        lines = [line, *self.connection.default_lines()]
        if names:
            lines.append(b"\r\n".join(map(b": ".join, zip(names, values, strict=True))) + b"\r\n")
        if body is not None:
            length = b"%d" % len(body)
            lines.append(b"content-length: %s\r\n" % length)
        if length is not None:
            if not length.isdigit():
                raise RuntimeError("Invalid Content-Length.")
            self.remaining = 0 if self.head_only else int(length)
        elif chunked or not (self.head_only or status in _NO_BODY or status < 200):
            self.chunked = True
            if not chunked:
                lines.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _write(self, body: bytes, more: bool) -> None:
        if self.head_only:
            body = b""
        elif self.chunked:
            body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        else:
            if len(body) > self.remaining:
                raise RuntimeError("Response content longer than Content-Length")
            self.remaining -= len(body)
            if not more and self.remaining:
                raise RuntimeError("Response content shorter than Content-Length")
        transport = self.connection.transport
        head, self.head = self.head, b""
        if head and len(body) < _JOIN_BELOW:
            transport.write(head + body)
        else:
            if head:
                transport.write(head)
            if body:
                transport.write(body)
        self.written = True
        if not more:
            self.complete = True
            self.wake()  # a receive() waiting for the disconnect returns now
            if not self.keep_alive:
                transport.close()
            self.connection.response_complete()


def _fields(headers: Any) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """An answer's header names, lowercased as uvicorn writes them, and values; checked."""
    if not headers:
        return (), ()
    names, values = zip(*headers, strict=True)
    joined = b"".join(names)
    if 1 in joined.translate(NOT_TOKEN) or not all(names) or 1 in b"".join(values).translate(_NOT_VALUE):
        raise RuntimeError("Invalid HTTP header name or value.")
    if joined.lower() != joined:
        names = tuple(name.lower() for name in names)
    return names, values
