"""Each exchange's answer, as its adapter reads it for pacing, clock and connection checks, drawn
at random: whatever an exchange (or a CDN in front of it) sends, reading it never raises, and a
cooldown or a usage it yields is a finite, bounded number."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.exchanges.base import MAX_COOLDOWN_S
from app.exchanges.registry import ADAPTERS
from app.proxy.upstream import ResponseHeaders

NAMES = ["retry-after", "x-mbx-used-weight-1m", "x-mbx-order-count-10s", "x-mbx-order-count-1d",
         "x-mbx-order-count-1m", "x-bapi-limit-status", "x-bapi-limit-reset-timestamp",
         "x-gate-ratelimit-requests-remain", "x-gate-ratelimit-reset-timestamp", "date"]
NUMBERISH = st.one_of(
    st.integers(-10**20, 10**20).map(str), st.floats().map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e999", "", " 5 ", "0x10", "5,6", "Wed, 21 Oct 2015 07:28:00 GMT"]))
STATUSES = st.sampled_from([200, 400, 401, 403, 418, 429, 500, 503]) | st.integers(100, 599)
VALUES = st.one_of(NUMBERISH, st.text(max_size=12))
HEADERS = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=4).map(
    lambda pairs: ResponseHeaders([(name.encode(), value.encode("latin-1", "replace")) for name, value in pairs]))
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["code", "msg", "retCode", "ret_code", "error", "errors", "data", "result",
                                         "serverTime", "time", "status", "label", "message", "sCode", "ret", "iso",
                                         "server_time", "epochMillis", "epoch", "unixtime", "timeNano", "ts",
                                         "permissions", "readOnly", "ips", "perm"])
                        | st.text(max_size=6), inner, max_size=4), max_leaves=8)
BODIES = st.one_of(st.binary(max_size=40), JSON.map(lambda doc: json.dumps(doc).encode()))


@pytest.mark.parametrize("exchange", sorted(ADAPTERS))
@settings(max_examples=150, deadline=None)
@given(status=STATUSES, headers=HEADERS, body=BODIES, document=JSON)
def test_any_answer_is_read_without_raising(exchange: str, status: int, headers: ResponseHeaders, body: bytes,
                                            document: object) -> None:
    adapter = ADAPTERS[exchange]
    cooldown = adapter.cooldown(status, headers, body)
    if cooldown is not None:
        assert math.isfinite(cooldown.seconds) and 0 < cooldown.seconds <= 3 * 24 * 3600, cooldown
    for usage in adapter.usage(headers):
        assert math.isfinite(usage.used) and usage.used >= 0 and usage.window_s > 0, usage
    adapter.refused_timestamp(status, body)
    adapter.read_server_time(document)
    adapter.read_check(status, document)


@pytest.mark.parametrize("retry_after", [b"inf", b"1e999", b"1e30", b"315360000"])  # the last: ten years
def test_a_cooldown_never_outlasts_the_longest_ban(retry_after: bytes) -> None:
    # Before: "inf" made a cooldown no request could wait out, and its 429 a 500 (Retry-After: inf).
    headers = ResponseHeaders([(b"retry-after", retry_after)])
    for status, exchange in ((429, "okx"), (418, "binance"), (429, "coinbase")):
        cooldown = ADAPTERS[exchange].cooldown(status, headers, b"")
        assert cooldown is not None and cooldown.seconds == MAX_COOLDOWN_S == 3 * 24 * 3600


@pytest.mark.parametrize(("exchange", "document"), [
    ("binance", {"serverTime": None}), ("bybit", {"time": "soon"}), ("kraken", {"result": {"unixtime": 1e400}}),
    ("gate", {"server_time": float("inf")})])
def test_a_time_answer_of_another_shape_is_no_time(exchange: str, document: object) -> None:
    assert ADAPTERS[exchange].read_server_time(document) is None


@pytest.mark.parametrize("document", [{"error": {"EAPI": 1}}, {"error": 7}, {"result": []}, ["error"]])
def test_a_check_answer_of_another_shape_is_read_from_its_status(document: object) -> None:
    assert ADAPTERS["kraken"].read_check(403, document).status == "permission_denied"
    assert ADAPTERS["kraken"].read_check(200, document).status in ("connected", "invalid_key")
