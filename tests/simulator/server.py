"""Run the simulator under a real uvicorn server in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from .app import create_app
from .state import EXCHANGE_IDS, SimulatorConfig


class SimulatorServer:
    """The fake exchanges on a real socket: `with SimulatorServer() as sim: sim.url_for("okx")`.

    Binds `host` (default 127.0.0.1) on `port` (0: a free port), so every request's source address
    is the real peer address the checks see. X-Forwarded-For and friends are ignored.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        start_timeout: float = 10.0,
        http: str = "h11",
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.http = http
        self._closing = threading.Event()
        self.app = create_app(self.config, self._closing)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- addresses ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the server, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        if self._socket is None:
            raise RuntimeError("simulator server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, exchange: str) -> str:
        """Base URL of one fake exchange, e.g. http://127.0.0.1:41234/okx."""
        if exchange not in EXCHANGE_IDS:
            raise ValueError(f"unknown exchange id {exchange!r}")
        return f"{self.url}/{exchange}"

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(
            family, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )  # proto set: asyncio then turns on TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        uv_config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level=self.log_level,
            log_config=None,  # leave the process's logging configuration alone
            access_log=False,
            proxy_headers=False,  # the client address must be the socket peer, never a header
            http=self.http,
            loop="asyncio",
            ws="none",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"simulator-{self.port}", daemon=True
        )
        self._closing.clear()
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("simulator server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; cuts forced delays short and waits for the thread to end."""
        self._closing.set()
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

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
