"""The upstream for benchmarks: a raw ASGI app answering like an exchange, as fast as it can.

It does not verify signatures (the tests' simulator does that); it exists so that the benchmark
measures signvault, not a verifier. BENCH_LATENCY_MS adds a fixed delay to every answer.

Its answers carry the headers a CDN-fronted exchange sends, some twenty with uvicorn's Date and
Server, shaped like Binance's REST answers: rate-limit counters, security headers, caching, the
CDN's own. signvault reads, filters and passes each one back, so an answer with only Content-Type
and Content-Length made a proxied request look cheaper than it is against a real exchange.
BENCH_EXCHANGE_HEADERS=few sends only those two, as the benchmarks before 2026-11-22e did.
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
EXCHANGE_HEADERS = [] if os.environ.get("BENCH_EXCHANGE_HEADERS") == "few" else [
    (b"x-mbx-uuid", b"4f8e2c1a-6b0d-4e57-9a3f-2d7c5b1e8a90"),
    (b"x-mbx-used-weight", b"20"),
    (b"x-mbx-used-weight-1m", b"20"),
    (b"strict-transport-security", b"max-age=31536000; includeSubdomains"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-xss-protection", b"1; mode=block"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'self'"),
    (b"cache-control", b"no-cache, no-store, must-revalidate"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"x-cache", b"Miss from cloudfront"),
    (b"via", b"1.1 8a2f5c0e7d1b4a3c9e6f0d2b5a7c8e1f.cloudfront.net (CloudFront)"),
    (b"x-amz-cf-pop", b"NRT57-P2"),
    (b"x-amz-cf-id", b"Zk3pQ8vR2mT6wY1xN4bC7dF0gH5jL9sA-eU2iO8kP3qW6rE1tY4uI=="),
]


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
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *EXCHANGE_HEADERS]})
    await send({"type": "http.response.body", "body": body})
