"""The HTTP/1.1 client against exchange answers drawn at random, in random pieces: every request
ends in an answer or one of the client's own errors, and a connection kept for the next request
reads that request's answer as exactly itself. Fuzzing the client (atheris) found three faults
these properties now hold against: bytes after an answer read as the next one, statuses outside
100-599, and an interim 1xx passed on as the answer when the connection closed."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.proxy import http1

NEXT = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"


class Transport(asyncio.Transport):
    """Takes the client's writes and remembers whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def write(self, data: Any) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """An answer's parts, mostly well formed, sometimes not: any status, framings that agree or
    contradict, a body of any length, and bytes after it."""
    interim = draw(st.sampled_from([b"", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early\r\nLink: x\r\n\r\n"]))
    status = draw(st.sampled_from([b"200", b"201", b"404", b"429", b"502", b"100", b"020", b"600", b"999", b"2000"]))
    line = b"HTTP/1.%s %s OK\r\n" % (draw(st.sampled_from([b"0", b"1"])), status)
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from([b"Content-Length: %d\r\n" % len(body), b"Transfer-Encoding: chunked\r\n", b"",
                                    b"Content-Length: %d\r\n" % (len(body) + 3), b"Content-Length: x\r\n"]))
    others = draw(st.lists(st.sampled_from([b"Connection: close\r\n", b"Content-Encoding: gzip\r\n",
                                            b"X-Exchange: a\r\n", b"Bad Header\r\n", framing]), max_size=2))
    fields = [framing, *others]
    if b"chunked" in framing:
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    after = draw(st.sampled_from([b"", b"\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmug", b"junk"]))
    return interim + line + b"".join(fields) + b"\r\n" + body + after


@settings(max_examples=1000, deadline=None)
@given(answer=answers(), cuts=st.lists(st.integers(1, 200), max_size=6), then_close=st.booleans())
def test_any_answer_ends_the_request_and_never_the_next_one(answer: bytes, cuts: list[int], then_close: bool) -> None:
    async def exchange() -> None:
        loop = asyncio.get_running_loop()
        connection, transport = http1._Connection(), Transport()
        connection.connection_made(transport)
        request = asyncio.ensure_future(connection.exchange(b"GET / HTTP/1.1\r\n\r\n", loop.time() + 5, loop))
        await asyncio.sleep(0)
        start = 0
        for cut in [*sorted(cuts), len(answer)]:
            if transport.closing:
                break
            connection.data_received(answer[start:cut])
            start = max(start, cut)
            await asyncio.sleep(0)
        if then_close and not transport.closing:
            connection.connection_lost(None)
        await asyncio.sleep(0)
        if not request.done():  # still waiting for the rest: what a real deadline would end
            request.cancel()
            return
        try:
            response = request.result()
        except (http1.MalformedResponse, http1.ConnectionLost, http1.ResponseTooLarge):
            assert transport.closing  # a connection that failed an answer is never used again
            return
        assert 200 <= response.status <= 599
        if connection.reusable and not connection.closed and not transport.closing:
            following = asyncio.ensure_future(connection.exchange(b"GET /next HTTP/1.1\r\n\r\n", loop.time() + 5, loop))
            await asyncio.sleep(0)
            connection.data_received(NEXT)
            await asyncio.sleep(0)
            assert following.done() and (following.result().status, following.result().body) == (200, b"next")

    asyncio.run(exchange())
