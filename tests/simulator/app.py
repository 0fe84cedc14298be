"""The ASGI app: one Starlette app, each fake exchange mounted under /{exchange_id}."""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from .core import SimRequest, SimResponse, Venue, json_response
from .state import EXCHANGE_IDS, FORCED, NOT_FOUND, ReceivedRequest, SimulatorConfig
from .venues import VENUES

SIMULATOR_ERROR = "simulator_error"


class _Recorder:
    """Reads one HTTP request off the ASGI channel, records it, answers it."""

    def __init__(self, exchange: str, venue: Venue | None, config: SimulatorConfig, closing: threading.Event) -> None:
        self.exchange = exchange
        self.venue = venue
        self.config = config
        self.closing = closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_full: bytes = scope.get("raw_path") or scope["path"].encode()
        full_path = raw_full.decode("utf-8", errors="replace")
        prefix = f"/{self.exchange}" if self.exchange else ""
        path = full_path[len(prefix) :] if self.exchange and full_path.startswith(prefix) else full_path
        query = scope.get("query_string", b"").decode("utf-8", errors="replace")
        body = await _read_body(receive)
        raw_headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        joined: dict[str, str] = {}
        for k, v in raw_headers:
            joined[k] = f"{joined[k]}, {v}" if k in joined else v
        client = scope.get("client")
        client_ip = client[0] if client else ""
        method = scope["method"].upper()
        record = ReceivedRequest(
            exchange=self.exchange,
            method=method,
            path=path,
            query=query,
            headers=joined,
            raw_headers=raw_headers,
            body=body,
            client_ip=client_ip,
            host=joined.get("host"),
            received_at=time.time(),
        )
        self.config.received.append(record)

        response = await self._answer(record, full_path)
        record.status = response.status
        record.response_body = response.body
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
                # The exchange's clock, as an HTTP Date: uvicorn's own (real-time) one is switched off.
                + [(b"date", formatdate(self.config.now(), usegmt=True).encode())],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _answer(self, record: ReceivedRequest, full_path: str) -> SimResponse:
        if self.venue is None:
            record.verdict = NOT_FOUND
            return json_response(404, {"error": "no exchange mounted here", "exchanges": list(EXCHANGE_IDS)})
        forced = self.config.take_forced(self.exchange, record.method, record.path)
        if forced is not None and forced.delay_seconds > 0:
            await self._sleep(forced.delay_seconds)
        if forced is not None and forced.status is not None:
            record.verdict = FORCED
            headers = {"content-type": "application/json"} if not isinstance(forced.body, (str, bytes)) else {}
            return SimResponse(forced.status, forced.body_bytes(), {**headers, **(forced.headers or {})})
        req = SimRequest(
            exchange=self.exchange,
            method=record.method,
            path=record.path,
            query=record.query,
            raw_headers=record.raw_headers,
            body=record.body,
            client_ip=record.client_ip,
            host=record.host,
            full_path=full_path,
            config=self.config,
            record=record,
            now_ms=self.config.now() * 1000.0,
        )
        try:
            verdict, response, detail = self.venue.handle(req)
            response.headers = {**response.headers, **self.venue.extra_headers(req)}
        except Exception:  # a bug in the simulator must show up in the test, not hang it
            verdict, detail = SIMULATOR_ERROR, traceback.format_exc()
            response = json_response(500, {"error": "simulator error", "detail": detail})
        record.verdict = verdict
        record.detail = detail
        return response

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            break
    return b"".join(chunks)


def create_app(config: SimulatorConfig, closing: threading.Event | None = None) -> Starlette:
    """The Starlette app serving every fake exchange under /{exchange_id}; state lives in `config`.

    `closing`, when set, cuts short any forced delay (used by SimulatorServer.stop)."""
    closing = closing or threading.Event()

    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"exchanges": list(EXCHANGE_IDS)})

    routes: list[Any] = [Route("/", index)]
    for exchange in EXCHANGE_IDS:
        routes.append(Mount(f"/{exchange}", app=_Recorder(exchange, VENUES[exchange](exchange), config, closing)))
    routes.append(Mount("", app=_Recorder("", None, config, closing)))
    app = Starlette(routes=routes)
    app.state.config = config
    return app
