"""Run an ASGI app under a real uvicorn server in a background thread, on a real socket.

Tests that care about the wire (source addresses, raw paths the HTTP client would normalise,
drop-in clients such as ccxt) use this instead of the in-process TestClient.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn


class ThreadedServer:
    """`with ThreadedServer(app) as server: server.url` — binds `host` on `port` (0: a free port)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, lifespan: Literal["on", "off"] = "off",
                 name: str = "server", log_level: str = "warning", start_timeout: float = 20.0,
                 http: str | type = "h11", date_header: bool = True) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.lifespan = lifespan
        self.name = name
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.http = http
        self.date_header = date_header
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        if self._socket is None:
            raise RuntimeError(f"{self.name} is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto set explicitly: asyncio then turns on TCP_NODELAY (else ~40 ms per response).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self.app, lifespan=self.lifespan, log_level=self.log_level,
            log_config=None,  # leave the process's logging configuration alone
            access_log=False,
            proxy_headers=False,  # the client address must be the socket peer, never a header
            http=self.http, loop="asyncio", ws="none", timeout_graceful_shutdown=2, timeout_keep_alive=5,
            date_header=self.date_header,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"{self.name}-{self.port}", daemon=True)
        self.before_start()
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def before_start(self) -> None:
        """Hook for subclasses."""

    def before_stop(self) -> None:
        """Hook for subclasses."""

    def stop(self) -> None:
        self.before_stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None
        self._socket = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
