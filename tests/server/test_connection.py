"""signvault's HTTP/1.1 protocol on a real socket, under uvicorn's server, byte for byte."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httptools
import pytest

from app.server.connection import MAX_HEAD_BYTES, HttpConnection
from tests.servers import ThreadedServer

Answer = tuple[int, dict[bytes, bytes], bytes]


# Answers a server must not write: framed twice, or by a transfer coding it does not apply; or
# with a field HTTP/1.1 cannot carry, a name that is not a token or a value with a control byte.
UNWRITABLE = {
    "/two-lengths": [(b"content-length", b"3"), (b"content-length", b"3")],
    "/length-and-chunked": [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")],
    "/gzip-coding": [(b"transfer-encoding", b"gzip")],
    "/name-with-space": [(b"x bad", b"1")],
    "/name-with-colon": [(b"x:bad", b"1")],
    "/empty-name": [(b"", b"1")],
    "/non-ascii-name": [(b"x-caf\xc3\xa9", b"1")],
    "/value-with-nul": [(b"x-a", b"a\x00b")],
    "/value-with-lf": [(b"x-a", b"a\nb")],
    "/value-with-del": [(b"x-a", b"a\x7fb")],
}


class Recorder:
    """An ASGI app whose behaviour each test picks by path, and which remembers what it was given."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.bodies: list[list[tuple[bytes, bool]]] = []
        self.after: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.scopes.append(scope)
        path = scope["path"]
        messages: list[tuple[bytes, bool]] = []
        self.bodies.append(messages)
        if path != "/early":
            while True:
                message = await receive()
                messages.append((message.get("body", b""), message.get("more_body", False)))
                if not message.get("more_body"):
                    break
        body = b"".join(chunk for chunk, _ in messages)
        if path == "/boom":
            raise RuntimeError("the app failed")
        if path == "/split":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"x-injected", b"a\r\nset-cookie: evil=1")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if path in UNWRITABLE:
            await send({"type": "http.response.start", "status": 200, "headers": UNWRITABLE[path]})
            await send({"type": "http.response.body", "body": b"abc"})
            return
        if path == "/obs-text":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"x-a", b"a\tb \xc3\xa9"), (b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"first ", "more_body": True})
            await send({"type": "http.response.body", "body": b"second"})
            return
        if path == "/short":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
            await send({"type": "http.response.body", "body": b"abc"})
            return
        if path == "/slow":
            await asyncio.sleep(0.5)
        if path == "/wait-disconnect":
            self.after.append(await receive())
            return
        answer = b"%s %s ?%s %d" % (scope["method"].encode(), scope["raw_path"], scope["query_string"], len(body))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"Content-Type", b"text/plain"), (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})
        if path == "/early":  # answered before reading the body: the rest is skipped, the connection kept
            self.after.append(await receive())


class Responses:
    """Reads whole answers off a socket, framed as any client frames them (httptools)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[Answer] = []
        self.headers: dict[bytes, bytes] = {}
        self.body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.headers, self.body))
        self.headers, self.body = {}, b""

    def next(self, timeout: float = 5) -> Answer:
        self.connection.settimeout(timeout)
        while not self.done:
            data = self.connection.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.parser.feed_data(data)
        return self.done.pop(0)


def closed(connection: socket.socket, timeout: float = 5) -> bool:
    connection.settimeout(timeout)
    try:
        return connection.recv(65536) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def app() -> Recorder:
    return Recorder()


@pytest.fixture
def server(app: Recorder) -> Iterator[ThreadedServer]:
    with ThreadedServer(app, http=HttpConnection) as running:
        yield running


@pytest.fixture
def client(server: ThreadedServer) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        yield connection


class TestRequests:
    def test_keep_alive_answers_in_one_write_with_one_date(self, client: socket.socket) -> None:
        responses = Responses(client)
        for _ in range(2):
            client.sendall(b"GET /a/b%2Fc?x=1 HTTP/1.1\r\nHost: signvault\r\n\r\n")
            status, headers, body = responses.next()
            assert (status, body) == (200, b"GET /a/b%2Fc ?x=1 0")
            assert headers[b"content-type"] == b"text/plain"  # names lowercased, as uvicorn writes them
            assert b"date" in headers and b"connection" not in headers

    def test_the_scope_is_what_asgi_asks_for(self, app: Recorder, client: socket.socket) -> None:
        client.sendall(b"GET /a/b%2Fc?x=1 HTTP/1.1\r\nHost: signvault\r\nX-Token: T\r\n\r\n")
        Responses(client).next()
        scope = app.scopes[0]
        assert scope["path"] == "/a/b/c" and scope["raw_path"] == b"/a/b%2Fc" and scope["query_string"] == b"x=1"
        assert scope["headers"] == [(b"host", b"signvault"), (b"x-token", b"T")]
        assert (scope["method"], scope["http_version"], scope["scheme"]) == ("GET", "1.1", "http")
        assert scope["client"][0] == "127.0.0.1" and scope["server"][0] == "127.0.0.1"

    def test_pipelined_requests_are_answered_in_order(self, client: socket.socket) -> None:
        client.sendall(b"GET /slow HTTP/1.1\r\nHost: s\r\n\r\n"
                       b"POST /b HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\n\r\nabc"
                       b"GET /c HTTP/1.1\r\nHost: s\r\n\r\n")
        responses = Responses(client)
        assert [responses.next()[2] for _ in range(3)] == [b"GET /slow ? 0", b"POST /b ? 3", b"GET /c ? 0"]

    def test_a_chunked_body_reaches_the_app_in_pieces(self, app: Recorder, client: socket.socket) -> None:
        client.sendall(b"POST /up HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        time.sleep(0.2)
        client.sendall(b"2\r\nde\r\n0\r\n\r\n")
        assert Responses(client).next()[2] == b"POST /up ? 5"
        assert app.bodies[0][0] == (b"abc", True) and b"".join(c for c, _ in app.bodies[0]) == b"abcde"
        assert app.bodies[0][-1][1] is False

    def test_expect_100_continue(self, client: socket.socket) -> None:
        client.sendall(b"POST /up HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        client.settimeout(5)
        assert client.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(b"abc")
        assert Responses(client).next()[2] == b"POST /up ? 3"

    def test_an_unread_body_is_skipped_and_the_connection_kept(self, app: Recorder, client: socket.socket) -> None:
        client.sendall(b"POST /early HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\nhello"
                       b"GET /next HTTP/1.1\r\nHost: s\r\n\r\n")
        responses = Responses(client)
        assert responses.next()[2] == b"POST /early ? 0"
        assert responses.next()[2] == b"GET /next ? 0"
        assert app.after == [{"type": "http.disconnect"}]  # receive() after the answer

    def test_http_1_0_closes_after_its_answer(self, client: socket.socket) -> None:
        client.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        status, headers, _ = Responses(client).next()
        assert status == 200 and headers[b"connection"] == b"close"
        assert closed(client)

    def test_head_sends_no_body(self, client: socket.socket) -> None:
        client.sendall(b"HEAD /h HTTP/1.1\r\nHost: s\r\n\r\nGET /g HTTP/1.1\r\nHost: s\r\n\r\n")
        client.settimeout(5)
        data = b""
        while b"GET /g ? 0" not in data:
            data += client.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert b"content-length: 11" in head and rest.startswith(b"HTTP/1.1 200 OK")


class TestAnswers:
    def test_no_length_means_chunked(self, client: socket.socket) -> None:
        client.sendall(b"GET /stream HTTP/1.1\r\nHost: s\r\n\r\n")
        _, headers, body = Responses(client).next()
        assert headers[b"transfer-encoding"] == b"chunked" and body == b"first second"

    def test_a_header_that_would_split_the_answer_is_a_500(self, client: socket.socket,
                                                           caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.ERROR, "uvicorn.error"):
            client.sendall(b"GET /split HTTP/1.1\r\nHost: s\r\n\r\n")
            status, headers, body = Responses(client).next()
        assert (status, body) == (500, b"Internal Server Error")
        assert b"set-cookie" not in headers and b"x-injected" not in headers
        assert "Exception in ASGI application" in caplog.text
        assert closed(client)

    @pytest.mark.parametrize("path", sorted(UNWRITABLE))
    def test_an_answer_http_cannot_carry_is_a_500(self, client: socket.socket, path: str) -> None:
        client.sendall(b"GET %s HTTP/1.1\r\nHost: s\r\n\r\n" % path.encode())
        status, headers, body = Responses(client).next()
        assert (status, body) == (500, b"Internal Server Error")
        assert b"transfer-encoding" not in headers
        assert closed(client)

    def test_a_value_may_hold_tabs_and_bytes_above_ascii(self, client: socket.socket) -> None:
        client.sendall(b"GET /obs-text HTTP/1.1\r\nHost: s\r\n\r\n")
        status, headers, body = Responses(client).next()
        assert (status, headers[b"x-a"], body) == (200, b"a\tb \xc3\xa9", b"ok")

    def test_an_app_failure_before_any_byte_is_a_500(self, client: socket.socket) -> None:
        client.sendall(b"GET /boom HTTP/1.1\r\nHost: s\r\n\r\n")
        assert Responses(client).next()[0] == 500
        assert closed(client)

    def test_a_body_shorter_than_its_length_is_never_sent(self, client: socket.socket) -> None:
        client.sendall(b"GET /short HTTP/1.1\r\nHost: s\r\n\r\n")
        assert Responses(client).next()[0] == 500  # nothing had gone out: the 500 still can
        assert closed(client)


class TestRefusals:
    def test_malformed_request_gets_400_and_a_close(self, client: socket.socket) -> None:
        client.sendall(b"GET / HTTP/1.1\r\nHost: s\r\nBad Header: x\r\n\r\n")
        status, headers, body = Responses(client).next()
        assert status == 400 and headers[b"connection"] == b"close" and body == b"Invalid HTTP request received."
        assert closed(client)

    def test_an_oversized_head_gets_431(self, client: socket.socket) -> None:
        client.sendall(b"GET / HTTP/1.1\r\nHost: s\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n")
        assert Responses(client).next()[0] == 431
        assert closed(client)

    def test_garbage_after_a_request_closes_after_its_answer(self, client: socket.socket) -> None:
        client.sendall(b"GET /slow HTTP/1.1\r\nHost: s\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
        status, _, body = Responses(client).next()
        assert (status, body) == (200, b"GET /slow ? 0")  # the 400 could not come first: it is not sent
        assert closed(client)

    def test_an_upgrade_is_answered_as_plain_http(self, app: Recorder, client: socket.socket) -> None:
        client.sendall(b"GET /ws HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        assert Responses(client).next()[2] == b"GET /ws ? 0"
        assert closed(client)


class TestConnections:
    def test_an_idle_connection_closes_after_the_keep_alive_time(self, app: Recorder) -> None:
        with ThreadedServer(app, http=HttpConnection) as server:
            server._server.config.timeout_keep_alive = 1  # type: ignore[union-attr]
            with socket.create_connection(("127.0.0.1", server.port)) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\nHost: s\r\n\r\n")
                Responses(connection).next()
                started = time.monotonic()
                assert closed(connection, timeout=5)
                assert 0.5 < time.monotonic() - started < 4

    def test_a_half_sent_head_does_not_hold_the_connection(self, app: Recorder) -> None:
        with ThreadedServer(app, http=HttpConnection) as server:
            server._server.config.timeout_keep_alive = 1  # type: ignore[union-attr]
            with socket.create_connection(("127.0.0.1", server.port)) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\nHost: s\r\n")  # and then nothing
                assert closed(connection, timeout=5)

    def test_a_client_that_leaves_is_a_disconnect_for_the_app(self, app: Recorder, server: ThreadedServer) -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: s\r\n\r\n")
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while not app.after and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.after == [{"type": "http.disconnect"}]

    def test_shutdown_finishes_the_answer_in_flight(self, app: Recorder) -> None:
        server = ThreadedServer(app, http=HttpConnection).start()
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            connection.sendall(b"GET /slow HTTP/1.1\r\nHost: s\r\n\r\n")
            time.sleep(0.1)
            server._server.should_exit = True  # type: ignore[union-attr]
            assert Responses(connection).next()[2] == b"GET /slow ? 0"
            assert closed(connection)
        server.stop()
