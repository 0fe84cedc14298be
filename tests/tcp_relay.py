"""A TCP relay in front of a real server, on a thread of its own, that can fail as networks do.

`black_hole()`: bytes stop moving both ways and new connections are accepted and never answered,
as when a host or a firewall drops packets. `refuse()`: every connection is cut and new ones are
refused, as when the server process is gone. `heal()`: the way is open again on the same port, as
when the network or the server comes back; connections cut or held meanwhile stay dead.
`slow(seconds)`: every chunk of bytes is delivered that much later, as over a long way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class TcpRelay:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._holes = threading.Event()
        self._delay_s = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="tcp-relay")
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with contextlib.suppress(RuntimeError):
            self.refuse()
        self._call(self._finish())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def slow(self, seconds: float) -> None:
        self._delay_s = seconds

    def black_hole(self) -> None:
        self._holes.set()

    def refuse(self) -> None:
        async def cut() -> None:
            assert self._server is not None
            self._server.close()
            for writer in self._writers:
                writer.transport.abort()

        self._call(cut())

    def heal(self) -> None:
        async def reopen() -> None:
            assert self._server is not None
            for writer in self._writers:
                writer.transport.abort()
            self._writers.clear()
            self._holes.clear()
            if not self._server.is_serving():
                self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

        self._call(reopen())

    async def _finish(self) -> None:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self._holes.is_set():
            return  # accepted, never answered
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.append(upstream_writer)
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            while self._holes.is_set():  # held, never delivered
                await asyncio.sleep(0.05)
            if self._delay_s:
                await asyncio.sleep(self._delay_s)
            writer.write(data)
            await writer.drain()
        writer.close()
