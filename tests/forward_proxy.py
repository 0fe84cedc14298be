"""A small HTTP forward proxy on a real socket, whose own outgoing connections leave from `source_ip`.

Enough for plain-HTTP absolute-form requests (what an HTTP client sends to a proxy for http://
targets): one request per connection, answered and closed. It records what it forwarded.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit


class ForwardProxy:
    def __init__(self, source_ip: str, host: str = "127.0.0.1") -> None:
        self.source_ip = source_ip
        self.host = host
        self.port = 0
        self.forwarded: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            url = urlsplit(target)
            headers = [line for line in lines if line and not line.lower().startswith(("proxy-", "connection"))]
            length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length")), 0)
            body = await reader.readexactly(length) if length else b""
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port,
                                                                 local_addr=(self.source_ip, 0))
            path = url.path + (f"?{url.query}" if url.query else "")
            up_writer.write(f"{method} {path} HTTP/1.1\r\n".encode() + "\r\n".join(
                [*headers, "Connection: close"]).encode("latin-1") + b"\r\n\r\n" + body)
            await up_writer.drain()
            self.forwarded.append(f"{method} {target}")
            writer.write(await up_reader.read())
            up_writer.close()
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        finally:
            writer.close()
