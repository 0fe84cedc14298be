"""The upstream for benchmarks: a raw ASGI app answering like an exchange, as fast as it can.

It does not verify signatures (the tests' simulator does that); it exists so that the benchmark
measures signvault, not a verifier. BENCH_LATENCY_MS adds a fixed delay to every answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

LATENCY_S = float(os.environ.get("BENCH_LATENCY_MS", "0")) / 1000
# Each answer takes LATENCY_S ± up to JITTER_S, spread evenly: a real exchange's round trips vary,
# and identical ones would return every in-flight answer at the same instant.
JITTER_S = float(os.environ.get("BENCH_JITTER_MS", "0")) / 1000
BODY = b'{"code":"0","msg":"","data":[{"ok":true}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body
        message = await receive()
        more = message.get("more_body", False)
    if LATENCY_S or JITTER_S:
        await asyncio.sleep(max(0.0, LATENCY_S + random.uniform(-JITTER_S, JITTER_S)))
    body = BODY
    if scope["path"].endswith("/public/time"):
        body = json.dumps({"code": "0", "data": [{"ts": str(int(time.time() * 1000))}]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
