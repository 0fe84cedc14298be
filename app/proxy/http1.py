"""A lean HTTP/1.1 client for exchange calls: pooled keep-alive connections, answers parsed by httptools.

Why our own: on the proxy's hot path aiohttp cost ~120 µs a request over a bare protocol
(bench/HISTORY.md, item 7), a third of the worker's time, for features an exchange call never uses.
This keeps what it does use: keep-alive per origin, TLS, the egress forward proxy (CONNECT for
https, absolute-form for http), a bound source address, gzip and deflate answers, bounded waits
and bounded bodies. It never follows redirects, keeps no cookies and reads no proxy from the
environment: the egress path is the configured one or none.

Errors say how far a request got: `ConnectFailed` means nothing was sent; any other `HttpError`
or `TimeoutError` after that means the exchange may have received it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import zlib
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

import httptools

from app.http_syntax import NOT_TOKEN

T = TypeVar("T")

# Bodies an exchange may send: an order book or trade history is a few MB at most.
MAX_RESPONSE_BYTES = 64 << 20
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class HttpError(Exception):
    """The exchange call failed in transport; the message never holds URLs, headers or secrets."""


class ConnectFailed(HttpError):
    """No connection (or proxy tunnel) could be opened: the request was not sent."""


class ConnectionLost(HttpError):
    """The connection closed before the whole answer arrived."""


class MalformedResponse(HttpError):
    """The answer is not HTTP/1.1 we can read."""


class ResponseTooLarge(HttpError):
    """The answer is larger than MAX_RESPONSE_BYTES."""


class InvalidRequest(ValueError):
    """The request cannot be written as HTTP/1.1 without changing its meaning."""


class Response(NamedTuple):
    status: int
    # As received, names lowercased: an answer carries some twenty headers, and each decoded here would
    # be encoded again when the proxy passes it back (bench/HISTORY.md, item 27).
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Route:
    """Where an origin's connections go, and how its requests start."""

    key: str  # the origin as given: one pool per origin
    tls: bool
    host: str
    port: int
    host_header: bytes
    target_prefix: str  # the origin's own path, or the whole origin for absolute-form via a proxy


@dataclass(frozen=True, slots=True)
class _Proxy:
    host: str
    port: int
    authorization: bytes  # a whole "Proxy-Authorization: ..." line, or b""


def _proxy(url: str | None) -> _Proxy | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("the egress proxy must be an http:// URL")
    authorization = b""
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = b"Proxy-Authorization: Basic " + base64.b64encode(pair) + b"\r\n"
    return _Proxy(parts.hostname, parts.port or 80, authorization)


@lru_cache(maxsize=256)
def _route(origin: str, via_proxy: bool) -> _Route:
    """Origins are few and fixed (the exchanges' and the settings'): each is parsed once."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("the exchange origin must be an http(s) URL with a host")
    tls = parts.scheme == "https"
    authority = parts.netloc.rpartition("@")[2]
    prefix = parts.path.rstrip("/")
    if via_proxy and not tls:  # a plain-HTTP request through a proxy names the whole URL
        prefix = f"http://{authority}{prefix}"
    if not authority.isascii():
        raise InvalidRequest("write the exchange origin's host in its ASCII (punycode) form")
    return _Route(origin, tls, parts.hostname, parts.port or (443 if tls else 80),
                  b"Host: " + authority.encode("ascii") + b"\r\n", prefix)


def _head(method: str, route: _Route, target: str, headers: Mapping[str, str], body: bytes,
          proxy_authorization: bytes) -> bytes:
    # A request line or header that could split into two is refused before any byte is written. The
    # checks run in C over the whole target, all names and all values at once: a regular expression per
    # name and per string was ~15k instructions of a request (callgrind).
    # No control character, DEL or space: isprintable() is False for the first two (and for
    # unprintable non-ASCII, which the line's ASCII encoding would refuse in any case).
    if not target.startswith("/") or not target.isprintable() or " " in target:
        raise InvalidRequest("the request target holds characters HTTP/1.1 cannot carry")
    lines = [f"{method} {route.target_prefix}{target} HTTP/1.1\r\n".encode("ascii"), route.host_header]
    if headers:
        # Names are tokens, none empty; values hold no CR, LF or NUL: checked joined, which holds
        # exactly when it holds for each.
        names, values = "".join(headers), "".join(headers.values())
        if (not all(headers) or not names.isascii() or 1 in names.encode("ascii").translate(NOT_TOKEN)
                or "\r" in values or "\n" in values or "\0" in values):
            raise InvalidRequest("a header cannot be written as HTTP/1.1")
        lines.append("".join([f"{name}: {value}\r\n" for name, value in headers.items()]).encode("latin-1"))
    if body or method in _BODY_METHODS:
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"Accept-Encoding: gzip, deflate\r\n")
    lines.append(proxy_authorization)
    lines.append(b"\r\n")
    return b"".join(lines)


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; httptools calls back as the answer arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.head_done = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(MalformedResponse("the exchange switched protocols"))
        except httptools.HttpParserError:
            self._fail(ResponseTooLarge("the answer is larger than signvault accepts") if self.too_large
                       else MalformedResponse("the answer is not valid HTTP/1.1"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.head_done and not _delimited(self.headers):
                self._finish()  # no length, not chunked: the answer ends where the connection does
            else:
                self._fail(ConnectionLost("the connection closed before the answer was complete"))
        # The parser holds this protocol's callbacks, a reference cycle that only a full garbage
        # collection would free, with the transport and its buffers; nothing parses after this.
        self.parser = None  # type: ignore[assignment]

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.waiter is None or self.waiter.done():
            # More bytes after the answer, in the same read: nobody asked for them, and left in the
            # parser they would be read as the next request's answer (found by fuzzing).
            self.reusable = False
        self._reset()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))  # called once a header: as little as it can

    def on_headers_complete(self) -> None:
        # llhttp takes any three digits for a status; HTTP's are 100 to 599, and signvault could
        # neither read nor pass on another (found by fuzzing: "020" was a status 20).
        if not 100 <= self.parser.get_status_code() <= 599:
            raise MalformedResponse  # stops the parser; data_received says why
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_RESPONSE_BYTES:
            self.too_large = True
            raise ResponseTooLarge  # stops the parser; data_received says why
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # 100 Continue, 103 Early Hints: the real answer follows on the same connection. Until its
            # head arrives, a close is a lost answer, not an interim one to pass on (found by fuzzing).
            self.head_done = False
            return
        self.reusable = self.parser.should_keep_alive()
        self._finish()

    # ours

    def _finish(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Response(self.parser.get_status_code(), self.headers, b"".join(self.chunks)))
        else:
            self.reusable = False

    def _fail(self, error: HttpError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, data: bytes, deadline: float, loop: asyncio.AbstractEventLoop) -> Response:
        """Send `data` and wait for the answer until `deadline` (loop time), then raise TimeoutError."""
        waiter: asyncio.Future[Response] = loop.create_future()
        self.waiter = waiter
        timer = loop.call_at(deadline, _expire, waiter)
        self.transport.write(data)  # type: ignore[union-attr]
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None


def _delimited(headers: list[tuple[bytes, bytes]]) -> bool:
    """A length or chunked framing: the answer does not end where the connection does."""
    return any(name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower())
               for name, value in headers)


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Tunnel(asyncio.Protocol):
    """Reads a forward proxy's answer to CONNECT; after a 2xx the socket carries TLS to the exchange."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0 and not self.answer.done():
            match = re.match(rb"HTTP/1\.[01] (\d{3})", self.buffer)
            self.answer.set_result(int(match.group(1)) if match else 0)
        elif len(self.buffer) > 16384 and not self.answer.done():
            self.answer.set_result(0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_result(0)


def decoded(response: Response) -> Response:
    """gzip and deflate answers decoded (the client asks for them), with the header gone; any other
    coding passes through with its header, for the caller to decode."""
    if not response.body:
        return response
    codings = [v for k, v in response.headers if k == b"content-encoding"]
    coding = codings[0].strip().lower() if codings else b""
    if coding not in (b"gzip", b"x-gzip", b"deflate"):
        return response
    # wbits 47: a gzip or zlib header, detected; a bare deflate stream ("deflate" as some servers send it) is -15.
    for wbits in ((47,) if coding != b"deflate" else (47, -15)):
        inflater = zlib.decompressobj(wbits)
        try:
            body = inflater.decompress(response.body, MAX_RESPONSE_BYTES)
        except zlib.error:
            continue
        if inflater.unconsumed_tail:
            raise ResponseTooLarge("the decoded answer is larger than signvault accepts")
        headers = [(k, v) for k, v in response.headers if k != b"content-encoding"]
        return Response(response.status, headers, body)
    raise MalformedResponse(f"the answer's {coding.decode('latin-1')} body cannot be decoded")


async def _before_sending(deadline: float, step: Awaitable[T]) -> T:
    """A step before the request is written (a free slot, a connection): the deadline passing there
    means nothing was sent, and the caller may retry at once, unlike a timeout after sending."""
    try:
        async with asyncio.timeout_at(deadline):
            return await step
    except TimeoutError:
        raise ConnectFailed("no connection to the exchange within the request's time") from None


class Http1Client:
    """Keep-alive connections per origin, on one egress path: a forward proxy, a bound source
    address, or neither. `request` sends the target exactly as given: signed bytes are not re-encoded.

    Each origin has `max_connections` requests outstanding at most, its own slots: an exchange that
    stops answering holds only its own until their deadlines, and the others' requests go on (with
    one count for all, a few hundred calls to one hung exchange stalled every exchange's). Its idle
    connections were already kept per origin, so this adds no sockets that could not be open before."""

    def __init__(self, timeout_s: float, connect_timeout_s: float = 5.0, *, proxy: str | None = None,
                 source_ip: str | None = None, max_connections: int = 512, max_idle_per_origin: int | None = None,
                 idle_s: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.proxy = _proxy(proxy)
        self.local_addr = (source_ip, 0) if source_ip else None
        # As many as may be open, by default: with more requests in flight than idle connections kept,
        # each burst closed the surplus and the next opened new ones (a TLS handshake each, against a
        # real exchange). 256 bots through one worker, a cap of 128: ~2,400 connections opened in 24 s,
        # ~15% fewer requests served. Unused ones still close after idle_s.
        self.max_idle = max_connections if max_idle_per_origin is None else max_idle_per_origin
        self.idle_s = idle_s
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.max_connections = max_connections
        self._slots: dict[str, asyncio.Semaphore] = {}  # per origin (_Route.key)
        self._idle: dict[str, deque[_Connection]] = {}
        self._closed = False

    async def request(self, method: str, origin: str, target: str, headers: Mapping[str, str],
                      body: bytes = b"") -> Response:
        route = _route(origin, self.proxy is not None)
        proxy_authorization = self.proxy.authorization if self.proxy and not route.tls else b""
        data = _head(method, route, target, headers, body, proxy_authorization) + body
        # The loop, asked for once: on CPython 3.11 each asking is a getpid() system call.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        # The usual case, a free slot and a pooled connection, waits only for the answer, under one
        # loop timer: asyncio.timeout() around it all was a fifth of this client's instructions per
        # request (callgrind). Waiting for a slot or a new connection counts against the same deadline.
        slots = self._slots.get(route.key)
        if slots is None:
            slots = self._slots[route.key] = asyncio.Semaphore(self.max_connections)
        if slots.locked():
            await _before_sending(deadline, slots.acquire())
        else:
            await slots.acquire()
        try:
            connection = self._checkout(route, loop)
            if connection is None:
                connection = await _before_sending(deadline, self._connect(route))
            try:
                response = await connection.exchange(data, deadline, loop)
            except BaseException:
                connection.close()  # timed out, cancelled or failed mid-answer: its bytes cannot be trusted
                raise
            self._release(route, connection, loop)
        finally:
            slots.release()
        return decoded(response)

    def _checkout(self, route: _Route, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        idle = self._idle.get(route.key)
        if not idle:
            return None
        stale_before = loop.time() - self.idle_s
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closed under us
            if not connection.closed and connection.idle_since > stale_before:
                return connection
            connection.close()
        return None

    def _release(self, route: _Route, connection: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed or not connection.reusable or connection.closed:
            connection.close()
            return
        idle = self._idle.setdefault(route.key, deque())
        now = loop.time()
        while idle and (idle[0].closed or idle[0].idle_since <= now - self.idle_s):
            idle.popleft().close()  # expired at the cold end
        if len(idle) >= self.max_idle:
            connection.close()
            return
        connection.idle_since = now
        idle.append(connection)

    async def _connect(self, route: _Route) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if self.proxy is None:
                    _, connection = await loop.create_connection(
                        _Connection, route.host, route.port, local_addr=self.local_addr,
                        ssl=self.ssl_context if route.tls else None, server_hostname=route.host if route.tls else None)
                    return connection
                if not route.tls:  # absolute-form requests go to the proxy itself
                    _, connection = await loop.create_connection(_Connection, self.proxy.host, self.proxy.port,
                                                                 local_addr=self.local_addr)
                    return connection
                return await self._tunnel(route, self.proxy)
        except TimeoutError:
            raise ConnectFailed("connecting timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(type(exc).__name__) from None

    async def _tunnel(self, route: _Route, proxy: _Proxy) -> _Connection:
        loop = asyncio.get_running_loop()
        transport, tunnel = await loop.create_connection(_Tunnel, proxy.host, proxy.port, local_addr=self.local_addr)
        try:
            host = route.host if ":" not in route.host else f"[{route.host}]"
            authority = f"{host}:{route.port}".encode("ascii")
            transport.write(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (authority, authority,
                                                                              proxy.authorization))
            status = await tunnel.answer
            if not 200 <= status < 300:
                raise ConnectFailed(f"the egress proxy refused the tunnel ({status or 'no answer'})")
            connection = _Connection()
            tls = await loop.start_tls(transport, connection, self.ssl_context, server_hostname=route.host)
            if tls is None:
                raise ConnectFailed("the TLS handshake through the egress proxy failed")
            connection.connection_made(tls)
            return connection
        except BaseException:
            transport.close()
            raise

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
