"""signvault's exchange-facing HTTP/1.1 client against real sockets: scripted servers, a CONNECT
proxy and TLS, so what it writes and how it reads an answer are checked byte for byte."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.exchanges.base import UpstreamRequest
from app.proxy import http1
from app.proxy.http1 import (
    ConnectFailed,
    ConnectionLost,
    Http1Client,
    InvalidRequest,
    MalformedResponse,
    ResponseTooLarge,
)
from app.proxy.upstream import ExchangeTimeout, ExchangeUnreachable, Http1Upstream, UnsendableRequest
from bench.run import self_signed_certificate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """A TCP server that records each connection's peer and the request heads it read."""

    def __init__(self, answer: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.ssl_context = ssl_context
        self.peers: list[str] = []
        self.heads: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def origin(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[0])
        try:
            await self.answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_head(reader: asyncio.StreamReader, server: Server) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    server.heads.append(head)
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return await reader.readexactly(length) if length else b""


def answering(*answers: bytes, then_close: bool = False) -> Callable[[Server], Handler]:
    """Each request on a connection gets the next answer; the connection stays open unless told."""
    def bind(server: Server) -> Handler:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for reply in answers:
                await read_head(reader, server)
                writer.write(reply)
                await writer.drain()
            if not then_close:
                await reader.read()  # until the client closes
        return answer
    return bind


def never_answering(server: Server) -> Handler:
    """Reads the request's head and never answers, until the client closes."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader, server)
        await reader.read()
    return answer


async def serve(make: Callable[[Server], Handler], ssl_context: ssl.SSLContext | None = None) -> Server:
    server = Server(lambda r, w: asyncio.sleep(0), ssl_context)
    server.answer = make(server)
    return await server.__aenter__()


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(test())


def test_keep_alive_reuses_one_connection_and_sends_the_target_as_signed() -> None:
    async def test() -> None:
        server = await serve(answering(OK, OK))
        client = Http1Client(5)
        first = await client.request("GET", server.origin, "/api/v3/order?symbol=BTC%2FUSDT&signature=ab",
                                     {"x-mbx-apikey": "KEY"})
        second = await client.request("POST", server.origin, "/api/v3/order", {"content-type": "application/json"},
                                      b'{"a":1}')
        await client.aclose()
        assert (first.status, first.body, second.body) == (200, b"ok", b"ok")
        assert len(server.peers) == 1
        assert server.heads[0] == (f"GET /api/v3/order?symbol=BTC%2FUSDT&signature=ab HTTP/1.1\r\n"
                                   f"Host: 127.0.0.1:{server.port}\r\nx-mbx-apikey: KEY\r\n"
                                   "Accept-Encoding: gzip, deflate\r\n\r\n").encode()
        assert b"Content-Length: 7\r\n" in server.heads[1]
    run(test)


def test_an_origin_path_prefixes_every_target() -> None:
    async def test() -> None:
        server = await serve(answering(OK))
        client = Http1Client(5)
        await client.request("GET", server.origin + "/binance/", "/api/v3/time", {})
        await client.aclose()
        assert server.heads[0].startswith(b"GET /binance/api/v3/time HTTP/1.1\r\n")
    run(test)


def test_chunked_and_close_delimited_answers_are_read_whole() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end"

    async def test() -> None:
        server = await serve(answering(chunked, until_close, then_close=True))
        client = Http1Client(5)
        first = await client.request("GET", server.origin, "/a", {})
        second = await client.request("GET", server.origin, "/b", {})
        third = await client.request("GET", server.origin, "/c", {})  # the server closed: a new connection
        await client.aclose()
        assert (first.body, second.body) == (b"Wikipedia", b"to the end")
        assert third.body == b"Wikipedia"
        assert len(server.peers) == 2
    run(test)


def test_gzip_is_decoded_and_other_codings_pass_through_with_their_header() -> None:
    packed = gzip.compress(b'{"code":"0"}')
    zipped = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(packed), packed)
    brotli = b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\n\x0b\x01\x80"

    async def test() -> None:
        server = await serve(answering(zipped, brotli))
        client = Http1Client(5)
        first = await client.request("GET", server.origin, "/a", {})
        second = await client.request("GET", server.origin, "/b", {})
        await client.aclose()
        assert first.body == b'{"code":"0"}'
        assert all(name != b"content-encoding" for name, _ in first.headers)
        # Names lowercased, values as sent.
        assert second.body == b"\x0b\x01\x80" and (b"content-encoding", b"br") in second.headers
    run(test)


def test_a_body_that_does_not_decode_is_a_malformed_answer() -> None:
    broken = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"

    async def test() -> None:
        server = await serve(answering(broken))
        client = Http1Client(5)
        with pytest.raises(MalformedResponse):
            await client.request("GET", server.origin, "/a", {})
        await client.aclose()
    run(test)


def test_informational_answers_are_skipped() -> None:
    async def test() -> None:
        server = await serve(answering(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK))
        client = Http1Client(5)
        response = await client.request("GET", server.origin, "/a", {})
        await client.aclose()
        assert (response.status, response.body) == (200, b"ok")
    run(test)


def test_an_informational_answer_then_a_close_is_a_lost_connection() -> None:
    async def test() -> None:
        server = await serve(answering(b"HTTP/1.1 100 Continue\r\n\r\n", then_close=True))
        client = Http1Client(5)
        with pytest.raises(ConnectionLost):  # not a 100 passed on as the answer
            await client.request("POST", server.origin, "/order", {}, b"{}")
        await client.aclose()
    run(test)


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 020 OK", b"HTTP/1.1 099 X", b"HTTP/1.1 600 X", b"HTTP/1.0 999"])
def test_a_status_http_does_not_have_is_a_malformed_answer(status_line: bytes) -> None:
    async def test() -> None:
        server = await serve(answering(status_line + b"\r\nContent-Length: 2\r\n\r\nok"))
        client = Http1Client(5)
        with pytest.raises(MalformedResponse):  # llhttp reads any three digits
            await client.request("GET", server.origin, "/", {})
        await client.aclose()
    run(test)


def test_bytes_after_an_answer_are_never_read_as_the_next_one() -> None:
    async def test() -> None:
        # The first answer arrives with the start of another nobody asked for, in the same write.
        smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmug"
        server = await serve(answering(OK + smuggled, OK))
        client = Http1Client(5)
        first = await client.request("GET", server.origin, "/a", {})
        second = await client.request("GET", server.origin, "/b", {})
        await client.aclose()
        assert (first.body, second.body) == (b"ok", b"ok")  # not b"smugHTTP/"
        assert len(server.peers) == 2  # that connection was not used again
    run(test)


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def test() -> None:
        server = await serve(answering(OK, then_close=True))
        client = Http1Client(5)
        await client.request("GET", server.origin, "/a", {})
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        response = await client.request("GET", server.origin, "/b", {})
        await client.aclose()
        assert response.body == b"ok" and len(server.peers) == 2
    run(test)


def test_idle_connections_expire() -> None:
    async def test() -> None:
        server = await serve(answering(OK, OK))
        client = Http1Client(5, idle_s=0.01)
        await client.request("GET", server.origin, "/a", {})
        await asyncio.sleep(0.05)
        await client.request("GET", server.origin, "/b", {})
        await client.aclose()
        assert len(server.peers) == 2
    run(test)


def answering_forever(delay_s: float) -> Callable[[Server], Handler]:
    """Every request on a connection gets OK after `delay_s`: a burst keeps all its connections busy."""
    def bind(server: Server) -> Handler:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await read_head(reader, server)
                await asyncio.sleep(delay_s)
                writer.write(OK)
                await writer.drain()
        return answer
    return bind


def test_a_burst_keeps_its_connections_for_the_next_one() -> None:
    """With more requests in flight than idle connections kept, every burst would open new ones."""
    async def test() -> None:
        server = await serve(answering_forever(0.05))
        client = Http1Client(5, max_connections=300)
        for _ in range(2):
            answers = await asyncio.gather(*(client.request("GET", server.origin, "/a", {}) for _ in range(200)))
            assert all(answer.body == b"ok" for answer in answers)
        await client.aclose()
        assert len(server.peers) == 200
    run(test)


def test_a_smaller_idle_cap_closes_the_surplus() -> None:
    async def test() -> None:
        server = await serve(answering_forever(0.05))
        client = Http1Client(5, max_idle_per_origin=10)
        for _ in range(2):
            await asyncio.gather(*(client.request("GET", server.origin, "/a", {}) for _ in range(50)))
        await client.aclose()
        assert len(server.peers) == 90  # 50, then 10 kept and 40 new
    run(test)


def test_a_closed_connection_lets_go_of_its_parser() -> None:
    """Parser and protocol refer to each other: left joined, a closed connection waits for a full
    garbage collection, with its transport and buffers."""
    async def test() -> None:
        server = await serve(answering(OK, then_close=True))
        client = Http1Client(5)
        await client.request("GET", server.origin, "/a", {})
        (connection,) = client._idle[server.origin]
        await asyncio.sleep(0.05)  # the server's close reaches it
        await client.aclose()
        assert connection.closed and connection.parser is None
    run(test)


def test_a_late_answer_times_out_and_its_connection_is_dropped() -> None:
    async def test() -> None:
        seen_close = asyncio.Event()

        def make(server: Server) -> Handler:
            async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await read_head(reader, server)
                await reader.read()  # never answers; returns when the client closes
                seen_close.set()
            return answer

        server = await serve(make)
        client = Http1Client(0.1)
        with pytest.raises(TimeoutError):
            await client.request("GET", server.origin, "/slow", {})
        await asyncio.wait_for(seen_close.wait(), 5)
        await client.aclose()
    run(test)


def test_running_out_of_time_before_sending_says_nothing_was_sent() -> None:
    async def test() -> None:
        server = await serve(never_answering)
        client = Http1Client(1.0, max_connections=1)
        first = asyncio.create_task(client.request("GET", server.origin, "/holds-the-only-slot", {}))
        await asyncio.sleep(0.05)
        client.timeout_s = 0.1
        with pytest.raises(ConnectFailed, match="within the request's time"):  # still queued for the slot
            await client.request("GET", server.origin, "/queued", {})
        first.cancel()
        assert [head.split(b" ")[1] for head in server.heads] == [b"/holds-the-only-slot"]

        silent = await asyncio.start_server(lambda reader, writer: reader.read(), "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        with pytest.raises(ConnectFailed, match="within the request's time"):  # the TLS handshake never ends
            await Http1Client(0.2, connect_timeout_s=5).request("GET", f"https://127.0.0.1:{port}", "/", {})
        silent.close()
        await client.aclose()
    run(test)


def test_an_exchange_that_stops_answering_holds_only_its_own_slots() -> None:
    async def test() -> None:
        hung, answering_ = await serve(never_answering), await serve(answering(OK))
        client = Http1Client(0.5, max_connections=1)
        held = asyncio.create_task(client.request("GET", hung.origin, "/holds-its-only-slot", {}))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.request("GET", answering_.origin, "/another-exchange", {})
        assert response.status == 200 and loop.time() - started < 0.2  # not queued behind the hung one
        client.timeout_s = 0.1
        with pytest.raises(ConnectFailed, match="within the request's time"):  # the hung one's own queue
            await client.request("GET", hung.origin, "/queued", {})
        with pytest.raises(TimeoutError):
            await held
        assert [head.split(b" ")[1] for head in hung.heads] == [b"/holds-its-only-slot"]
        await client.aclose()
    run(test)


def test_a_request_queued_for_a_connection_still_ends_at_its_own_deadline() -> None:
    async def test() -> None:
        server = await serve(never_answering)
        client = Http1Client(0.2, max_connections=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = asyncio.create_task(client.request("GET", server.origin, "/holds-the-only-slot", {}))
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutError):  # its slot frees at 0.2 s; its own deadline is 0.3 s, not later
            await client.request("GET", server.origin, "/queued", {})
        assert loop.time() - started == pytest.approx(0.3, abs=0.08)
        with pytest.raises(TimeoutError):
            await first
        with pytest.raises(TimeoutError):  # every slot came back
            await client.request("GET", server.origin, "/after", {})
        assert [head.split(b" ")[1] for head in server.heads] == [b"/holds-the-only-slot", b"/queued", b"/after"]
        await client.aclose()
    run(test)


def test_an_answer_cut_short_is_a_lost_connection() -> None:
    async def test() -> None:
        server = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", then_close=True))
        client = Http1Client(5)
        with pytest.raises(ConnectionLost):
            await client.request("POST", server.origin, "/order", {}, b"{}")
        await client.aclose()
    run(test)


def test_garbage_is_a_malformed_answer() -> None:
    async def test() -> None:
        server = await serve(answering(b"SSH-2.0-OpenSSH\r\n\r\n"))
        client = Http1Client(5)
        with pytest.raises(MalformedResponse):
            await client.request("GET", server.origin, "/", {})
        await client.aclose()
    run(test)


def test_an_answer_over_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_RESPONSE_BYTES", 1000)
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    packed = gzip.compress(b"x" * 5000)
    bomb = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(packed), packed)

    async def test() -> None:
        server = await serve(answering(big))
        client = Http1Client(5)
        with pytest.raises(ResponseTooLarge):
            await client.request("GET", server.origin, "/", {})
        server = await serve(answering(bomb))
        with pytest.raises(ResponseTooLarge):
            await client.request("GET", server.origin, "/", {})
        await client.aclose()
    run(test)


@pytest.mark.parametrize(("target", "headers"), [
    ("/a b", {}),
    ("/a\r\nX-Injected: 1", {}),
    ("no-slash", {}),
    ("/a\tb", {}),
    ("/a\x7f", {}),
    ("/a", {"x-note": "one\r\nX-Injected: 1"}),
    ("/a", {"bad name": "v"}),
    # Names and values are checked all at once: each bad one is still found, wherever it is.
    ("/a", {"x-ok": "v", "x-note": "two\nX-Injected: 1"}),
    ("/a", {"x-ok": "v", "x-nul": "a\x00b"}),
    ("/a", {"x-ok": "v", "": "v"}),
    ("/a", {"x-ok": "v", "a,b": "v"}),
    ("/a", {"x-ok": "v", "a:b": "v"}),
    ("/a", {"x-ok\r\nX-Injected": "1"}),
    ("/a", {"x-ok": "v", "na\u00efve": "v"}),
])
def test_a_request_that_would_split_is_refused_before_connecting(target: str, headers: dict[str, str]) -> None:
    async def test() -> None:
        server = await serve(answering(OK))
        client = Http1Client(5)
        with pytest.raises(InvalidRequest):
            await client.request("GET", server.origin, target, headers)
        await client.aclose()
        assert server.peers == []
    run(test)


def test_an_unreachable_exchange_fails_to_connect() -> None:
    async def test() -> None:
        server = await serve(answering(OK))
        port = server.port
        server.server.close()  # type: ignore[union-attr]
        await server.server.wait_closed()  # type: ignore[union-attr]
        client = Http1Client(5)
        with pytest.raises(ConnectFailed):
            await client.request("POST", f"http://127.0.0.1:{port}", "/order", {}, b"{}")
        await client.aclose()
    run(test)


def test_connections_leave_from_the_source_address() -> None:
    async def test() -> None:
        server = await serve(answering(OK))
        client = Http1Client(5, source_ip="127.0.0.2")
        await client.request("GET", server.origin, "/", {})
        await client.aclose()
        assert server.peers == ["127.0.0.2"]
    run(test)


def test_plain_http_through_the_egress_proxy_names_the_whole_url_and_authenticates() -> None:
    async def test() -> None:
        proxy = await serve(answering(OK))
        client = Http1Client(5, proxy=f"http://ops:p%40ss@127.0.0.1:{proxy.port}")
        await client.request("GET", "http://exchange.example:8080", "/api/v5/account/balance", {})
        await client.aclose()
        head = proxy.heads[0].decode()
        assert head.startswith("GET http://exchange.example:8080/api/v5/account/balance HTTP/1.1\r\n")
        assert "Host: exchange.example:8080\r\n" in head
        assert "Proxy-Authorization: Basic b3BzOnBAc3M=\r\n" in head  # ops:p@ss
    run(test)


# TLS: a throwaway CA-less certificate for 127.0.0.1 (the benchmark's fake exchange serves the same
# kind), trusted by the client's own context.

@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_tls_to_the_exchange_is_verified(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls

    async def test() -> None:
        server = await serve(answering(OK, OK), server_context)
        trusting = Http1Client(5, ssl_context=client_context)
        first = await trusting.request("GET", server.origin, "/", {})
        second = await trusting.request("GET", server.origin, "/", {})
        await trusting.aclose()
        assert (first.body, second.body, len(server.peers)) == (b"ok", b"ok", 1)
        doubting = Http1Client(5)  # the system's trust store does not know this certificate
        with pytest.raises(ConnectFailed, match="SSLCertVerificationError"):
            await doubting.request("GET", server.origin, "/", {})
        await doubting.aclose()
    run(test)


def connect_proxy(target_port: int, seen: list[bytes], status: bytes = b"200 Connection established") -> Handler:
    """Answers CONNECT, then pipes bytes both ways to 127.0.0.1:target_port."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 " + status + b"\r\n\r\n")
        if not status.startswith(b"200"):
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
    return answer


def test_https_through_the_egress_proxy_tunnels_with_connect(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls

    async def test() -> None:
        exchange = await serve(answering(OK, OK), server_context)
        seen: list[bytes] = []
        proxy = await serve(lambda _server: connect_proxy(exchange.port, seen))
        client = Http1Client(5, proxy=f"http://ops:secret@127.0.0.1:{proxy.port}", ssl_context=client_context)
        first = await client.request("GET", exchange.origin, "/api/v3/account", {"x-mbx-apikey": "K"})
        second = await client.request("GET", exchange.origin, "/api/v3/account", {})
        await client.aclose()
        assert (first.body, second.body) == (b"ok", b"ok")
        assert len(seen) == 1  # one tunnel, kept alive
        assert seen[0].startswith(f"CONNECT 127.0.0.1:{exchange.port} HTTP/1.1\r\n".encode())
        assert b"Proxy-Authorization: Basic b3BzOnNlY3JldA==\r\n" in seen[0]
        assert exchange.heads[0].startswith(b"GET /api/v3/account HTTP/1.1\r\n")
        assert b"Proxy-Authorization" not in exchange.heads[0]  # the exchange never sees proxy credentials
    run(test)


def test_a_refused_tunnel_fails_to_connect_without_naming_credentials(
        tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def test() -> None:
        proxy = await serve(lambda _server: connect_proxy(1, [], b"407 Proxy Authentication Required"))
        client = Http1Client(5, proxy=f"http://ops:secret@127.0.0.1:{proxy.port}", ssl_context=tls[1])
        with pytest.raises(ConnectFailed, match="407") as failure:
            await client.request("GET", "https://exchange.example", "/", {})
        await client.aclose()
        assert "secret" not in str(failure.value)
    run(test)


def test_the_upstream_says_how_far_a_failed_order_got() -> None:
    async def test() -> None:
        cut = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", then_close=True))
        gone = await serve(answering(OK))
        gone_origin = gone.origin
        gone.server.close()  # type: ignore[union-attr]
        await gone.server.wait_closed()  # type: ignore[union-attr]
        upstream = Http1Upstream(Http1Client(5))
        order = UpstreamRequest("POST", "/api/v5/trade/order", body=b"{}")
        with pytest.raises(ExchangeUnreachable, match="may or may not"):
            await upstream.send(cut.origin, order, "OKX", unknown_outcome=True)
        with pytest.raises(ExchangeUnreachable, match="not sent"):
            await upstream.send(gone_origin, order, "OKX", unknown_outcome=True)
        with pytest.raises(UnsendableRequest):
            await upstream.send(cut.origin, UpstreamRequest("GET", "/a b"), "OKX", unknown_outcome=False)
        await upstream.aclose()
        slow = await serve(lambda server: lambda reader, writer: reader.read())
        upstream = Http1Upstream(Http1Client(0.1))
        with pytest.raises(ExchangeTimeout, match="may or may not"):
            await upstream.send(slow.origin, order, "OKX", unknown_outcome=True)
        await upstream.aclose()
    run(test)
