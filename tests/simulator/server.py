"""Run the simulator under a real uvicorn server in a background thread."""

from __future__ import annotations

import threading

from tests.servers import ThreadedServer

from .app import create_app
from .state import EXCHANGE_IDS, SimulatorConfig


class SimulatorServer(ThreadedServer):
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
        self._closing = threading.Event()
        super().__init__(create_app(self.config, self._closing), host, port, name="simulator",
                         log_level=log_level, start_timeout=start_timeout, http=http, date_header=False)

    def url_for(self, exchange: str) -> str:
        """Base URL of one fake exchange, e.g. http://127.0.0.1:41234/okx."""
        if exchange not in EXCHANGE_IDS:
            raise ValueError(f"unknown exchange id {exchange!r}")
        return f"{self.url}/{exchange}"

    def before_start(self) -> None:
        self._closing.clear()

    def before_stop(self) -> None:
        # Cut forced delays short so a hanging request does not hold up the stop.
        self._closing.set()
