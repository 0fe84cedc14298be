"""Caps request bodies before routing or authentication: an anonymous client cannot make the
process buffer an unbounded body (FastAPI reads a JSON body before checking the token)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import TYPE_PREFIX, send_problem

_LENGTH_FRAMED = frozenset({"1.0", "1.1"})


def _problem(limit: int) -> bytes:
    return json.dumps({"type": TYPE_PREFIX + "body-too-large", "title": "The request body is too large",
                       "status": 413, "detail": f"at most {limit} bytes"}).encode()


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if declares_over(headers.get(b"content-length", b""), self.max_bytes):
            await refuse_too_large(send, self.max_bytes)
            return
        if scope.get("http_version") in _LENGTH_FRAMED and b"transfer-encoding" not in headers:
            # HTTP/1.x without Transfer-Encoding: the body is Content-Length bytes, checked above, or
            # none at all (RFC 9112 §6.3), and the server reads no further. Only a chunked body,
            # or one over HTTP/2, needs counting as it streams.
            await self.app(scope, receive, send)
            return
        seen = 0
        too_large = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Streamed past the cap without a Content-Length: end the body here; whatever the
                    # route answers about the truncated body is replaced by the 413 below.
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if too_large:
                if not refused:
                    refused = True
                    await refuse_too_large(send, self.max_bytes)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


def declares_over(content_length: bytes | str, limit: int) -> bool:
    """A Content-Length value over `limit` (one that is not a number declares nothing)."""
    return content_length.isdigit() and int(content_length) > limit


async def refuse_too_large(send: Send, limit: int) -> None:
    await send_problem(send, 413, _problem(limit))

