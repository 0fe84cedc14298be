"""signvault's HTTP/1.1 server protocol, which uvicorn runs (`http=HttpConnection`) in place of its own.

uvicorn still owns the process, the listening sockets, the lifespan, signals, graceful shutdown and
the Date header (its `ServerState`); this is how one connection's bytes become ASGI requests and
their answers bytes again. It parses with httptools, as uvicorn's own protocol does, and differs in
what a request costs (bench/HISTORY.md, item 34): the answer's head and body go out in one write, a
request's body needs no event when it has already arrived, one timer per connection watches for
idleness instead of one armed and cancelled per request, and an answer's headers are checked
without a regular expression search per header. And in one limit uvicorn's does not have: a
request's line and headers together may hold at most MAX_HEAD_BYTES (431 beyond that).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from urllib.parse import unquote

import httptools

from app.server.cycle import STATUS_LINES, RequestCycle, logger

MAX_HEAD_BYTES = 64 * 1024  # a request's line and header fields; a bot's are well under 2 KB
HIGH_WATER = 64 * 1024  # request body bytes held for the app before the connection stops reading


class _Refused(Exception):
    """A request the connection answers itself, and then closes."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


_BAD_REQUEST = _Refused(400, "Invalid HTTP request received.")


class HttpConnection(asyncio.Protocol):
    """One client connection: requests parsed in order, answered one at a time (pipelined ones wait)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.root_path: str = config.root_path
        self.asgi_version: str = config.asgi_version
        self.keep_alive_s: float = config.timeout_keep_alive
        self.limit_concurrency: int | None = config.limit_concurrency
        self.server_state = server_state
        self.app_state = app_state
        self.parser: httptools.HttpRequestParser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int | None] | None = None
        self.scheme = "http"
        self.cycle: RequestCycle | None = None  # the newest request: being answered, or queued
        self.pipeline: deque[RequestCycle] = deque()  # parsed while an earlier one was answered
        self.refusal: _Refused | None = None
        self.done_reading = False  # after an error or an Upgrade the bytes that follow are not ours to read
        self.read_paused = False
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        self._defaults_from: object = None
        self._defaults: list[bytes] = []
        # The request being parsed.
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.expect_continue = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.server_state.connections.add(self)
        self.transport = transport  # type: ignore[assignment]
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.idle_since = self.loop.time()
        self._watch_idle()

    def data_received(self, data: bytes) -> None:
        if self.done_reading:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._end_at_upgrade()
        except httptools.HttpParserError:
            self._refuse(self.refusal or _BAD_REQUEST)

    def eof_received(self) -> bool | None:
        return None  # the client is done sending: the transport closes, as with uvicorn's own protocols

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        for cycle in (*self.pipeline, self.cycle):
            if cycle is not None and not cycle.complete:
                cycle.disconnected = True
                cycle.wake()
        self.pipeline.clear()
        self.cycle = None
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        # The parser holds this protocol's callbacks: a cycle only a full collection would free.
        self.parser = None  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.head_bytes = 0
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._head_too_large()
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called once a header, some ten times a request: kept to what it must do.
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._head_too_large()
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        try:
            scope = self._scope()
        except (ValueError, httptools.HttpParserError):  # a target we cannot read as a path
            self.refusal = _BAD_REQUEST
            raise
        keep_alive = scope["http_version"] != "1.0" and self.parser.should_keep_alive()
        cycle = RequestCycle(self, scope, keep_alive, self.expect_continue)
        previous, self.cycle = self.cycle, cycle
        if previous is None or previous.complete:
            self._start(cycle)
        else:  # pipelined: answered in order, and reading waits until it is
            self.pipeline.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle is None or cycle.complete:
            return  # answered without reading it: the bytes are skipped, the connection kept
        cycle.body += body
        if len(cycle.body) > HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None:
            cycle.body_done = True
            cycle.wake()

    # From uvicorn's server

    def shutdown(self) -> None:
        """Graceful shutdown: an idle connection closes now, a busy one after its answer."""
        if self.cycle is None or self.cycle.complete:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    # From the requests' cycles

    def response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.resume_reading()
        if self.pipeline:
            self._start(self.pipeline.popleft())
        else:
            self.idle_since = self.loop.time()
            self._watch_idle()

    def default_lines(self) -> list[bytes]:
        """uvicorn's default headers (the Date, once a second) as lines, rendered once per change."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults_from:
            self._defaults_from = defaults
            self._defaults = [b"%s: %s\r\n" % (name, value) for name, value in defaults]
        return self._defaults

    def pause_reading(self) -> None:
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    async def drained(self) -> None:
        if self.write_paused:
            if self._drain is None or self._drain.done():
                self._drain = self.loop.create_future()
            await self._drain

    # Ours

    def _head_too_large(self) -> None:
        self.refusal = _Refused(431, f"The request's line and headers are over {MAX_HEAD_BYTES} bytes.")
        raise self.refusal  # stops the parser; data_received answers

    def _scope(self) -> dict[str, Any]:
        url = self.url
        if url[:1] == b"/" and b"#" not in url:  # origin-form, as clients send it
            raw_path, _, query = url.partition(b"?")
        else:  # absolute-form, or anything else llhttp let through
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"", parsed.query or b""
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        version = self.parser.get_http_version()
        return {
            "type": "http", "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": version if version in ("1.1", "1.0") else "1.1",
            "server": self.server, "client": self.client, "scheme": self.scheme,
            "method": self.parser.get_method().decode("ascii"), "root_path": self.root_path,
            "path": self.root_path + path, "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": query, "headers": self.headers, "state": self.app_state.copy(),
        }

    def _start(self, cycle: RequestCycle) -> None:
        app = self.app
        limit = self.limit_concurrency
        if limit is not None and (len(self.server_state.connections) >= limit
                                  or len(self.server_state.tasks) >= limit):
            logger.warning("Exceeded concurrency limit.")
            app = _unavailable
        task = self.loop.create_task(cycle.run(app))
        task.add_done_callback(self.server_state.tasks.discard)
        self.server_state.tasks.add(task)

    def _watch_idle(self) -> None:
        # One timer at a time per connection, moved on when it fires: arming and cancelling one per
        # request cost a timer heap insert and removal each.
        if self.idle_timer is None:
            self.idle_timer = self.loop.call_at(self.idle_since + self.keep_alive_s, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.complete):
            return  # closed, or answering: response_complete watches again
        if self.loop.time() - self.idle_since >= self.keep_alive_s:
            # No whole request since the last answer for the keep-alive time (a half-sent head included).
            self.transport.close()
        else:
            self._watch_idle()

    def _end_at_upgrade(self) -> None:
        """An Upgrade or CONNECT request: nothing here switches protocols, so it is answered as plain
        HTTP, its body taken to end at its head, and the connection closes after the answer."""
        self.done_reading = True
        cycle = self.cycle
        if cycle is None or cycle.complete:
            self.transport.close()
            return
        cycle.keep_alive = False
        cycle.body_done = True
        cycle.wake()

    def _refuse(self, refusal: _Refused) -> None:
        self.done_reading = True
        newest = self.cycle
        if newest is not None and not newest.complete:
            if newest.body_done:  # the bad bytes follow whole requests: answer those, then close
                newest.keep_alive = False
                return
            newest.disconnected = True  # its own body is broken: its app is told the client left
            newest.wake()
            if newest.written or self.pipeline:
                self.transport.close()
                return
        logger.warning(refusal.reason)
        reason = refusal.reason.encode("ascii")
        self.transport.write(STATUS_LINES[refusal.status] + b"content-type: text/plain; charset=utf-8\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(reason), reason))
        self.transport.close()


async def _unavailable(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"Service Unavailable"})


def _address(info: Any) -> tuple[str, int | None] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    if isinstance(info, str) and info:
        return info, None  # a Unix socket's path
    return None
