"""ResponseHeaders: an exchange's answer headers, kept as bytes, as the adapters read them."""

from __future__ import annotations

import time

import pytest

from app.exchanges.registry import get_adapter
from app.proxy.upstream import ResponseHeaders, _answer

RAW = [(b"content-type", b"application/json"), (b"x-mbx-used-weight-1m", b"20"), (b"retry-after", b"7"),
       (b"x-note", b"caf\xe9"), (b"x-mbx-used-weight-1m", b"21")]


def test_values_are_read_by_lowercase_name_decoded_and_the_last_repeat_wins() -> None:
    headers = ResponseHeaders(RAW)
    assert headers["x-mbx-used-weight-1m"] == "21"
    assert headers.get("x-note") == "caf\xe9"
    assert headers.get("x-missing") is None and headers.get("x-missing", "") == ""
    assert "retry-after" in headers and "Retry-After" not in headers  # names arrive lowercased
    assert dict(headers) == {"content-type": "application/json", "x-mbx-used-weight-1m": "21",
                             "retry-after": "7", "x-note": "caf\xe9"}
    assert len(headers) == 4


def test_the_adapters_read_their_limits_through_it() -> None:
    binance = get_adapter("binance")
    assert binance is not None
    headers = ResponseHeaders(RAW)
    assert [(u.scope, u.used) for u in binance.usage(headers)] == [("ip", 21)]
    cooldown = binance.cooldown(429, headers, b"")
    assert cooldown is not None and cooldown.seconds == 7


@pytest.mark.parametrize("scale", [1, 1000])
def test_a_gate_endpoint_out_of_requests_waits_for_the_reset_in_seconds_or_milliseconds(scale: int) -> None:
    gate = get_adapter("gate")
    assert gate is not None
    reset = str(int((time.time() + 5) * scale))
    headers = ResponseHeaders([(b"x-gate-ratelimit-requests-remain", b"0"),
                               (b"x-gate-ratelimit-reset-timestamp", reset.encode())])
    cooldown = gate.cooldown(200, headers, b"{}")
    assert cooldown is not None and cooldown.scope == "endpoint" and 3 <= cooldown.seconds <= 6


def test_an_answer_loses_the_hops_headers_and_those_its_connection_names() -> None:
    answer = _answer(200, [(b"connection", b"keep-alive, X-Hop"), (b"x-hop", b"1"), (b"server", b"nginx"),
                           (b"content-encoding", b"gzip"), (b"x-kept", b"2")], b"{}", decoded=True)
    assert answer.headers == [(b"x-kept", b"2")]


@pytest.mark.parametrize(("exchange", "status", "headers", "body", "scope"), [
    # Counted per endpoint: only that endpoint waits, the key's cancels on other endpoints go on.
    ("bybit", 200, [(b"x-bapi-limit-status", b"0")], b'{"retCode":0}', "endpoint"),
    ("bybit", 200, [], b'{"retCode":10006,"retMsg":"Too many visits!"}', "endpoint"),
    ("okx", 429, [], b'{"code":"50011","msg":"Rate limit reached."}', "endpoint"),
    ("okx", 200, [], b'{"code":"50011","msg":"Rate limit reached."}', "endpoint"),
    ("bitget", 429, [], b'{"code":"429","msg":"Too Many Requests"}', "endpoint"),
    ("cryptocom", 200, [], b'{"code":42901,"message":"TOO_MANY_REQUESTS"}', "endpoint"),
    # OKX's sub-account order rate counts new and amended orders: cancels go on.
    ("okx", 200, [], b'{"code":"50061","msg":"Sub-account rate limit exceeded"}', "orders"),
    # KuCoin's resource pool is the UID's, across endpoints: the key waits.
    ("kucoin", 200, [(b"gw-ratelimit-remaining", b"0")], b'{"code":"200000"}', "key"),
    ("binance", 429, [], b'{"code":-1003}', "ip"),
])
def test_each_exchange_says_what_a_spent_limit_stops(exchange: str, status: int, headers: list[tuple[bytes, bytes]],
                                                     body: bytes, scope: str) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    cooldown = adapter.cooldown(status, ResponseHeaders(headers), body)
    assert cooldown is not None and cooldown.scope == scope
    assert adapter.endpoint_cooldowns == (exchange in ("bybit", "okx", "bitget", "cryptocom", "gate"))
