"""OKX, KuCoin, Bitget and Coinbase Exchange sign `timestamp + METHOD + path + body` with nothing
between path and body: a body that does not start as JSON could carry the path's tail, and /sign
would hand out a signature for `/api/v1/with` + `%64rawals{...}`: a withdrawal the classifier never
saw."""

from __future__ import annotations

import pytest

from app.exchanges.base import Moment, RequestRefused, UpstreamRequest
from app.exchanges.keys import signing_key
from app.exchanges.registry import get_adapter

JSON = {"content-type": "application/json"}
ORDER = b'{"symbol":"BTC-USDT","side":"buy"}'


@pytest.mark.parametrize("exchange", ["okx", "kucoin", "bitget", "coinbaseexchange"])
@pytest.mark.parametrize("body", [b"%64rawals" + ORDER, b";/withdrawals" + ORDER, b"rawals" + ORDER,
                                  b"/x" + ORDER, b"?a=1", b"#" + ORDER, b'"text"', b"1", b"\x00{}"])
def test_a_body_that_does_not_start_as_json_is_refused(exchange: str, body: bytes) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    key = signing_key(adapter.spec, "hmac", "KEY", "c2VjcmV0", "pw")
    with pytest.raises(RequestRefused, match="takes a JSON body"):
        adapter.sign(UpstreamRequest("POST", "/api/v1/with", body=body, headers=JSON), key, Moment(1_700_000_000_000))


@pytest.mark.parametrize("exchange", ["okx", "kucoin", "bitget", "coinbaseexchange"])
@pytest.mark.parametrize("body", [ORDER, b"[" + ORDER + b"]", b" \n\t\r" + ORDER, b""])
def test_json_bodies_are_signed(exchange: str, body: bytes) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    key = signing_key(adapter.spec, "hmac", "KEY", "c2VjcmV0", "pw")
    signed = adapter.sign(UpstreamRequest("POST", "/api/v1/orders", body=body, headers=JSON), key,
                          Moment(1_700_000_000_000))
    assert signed.body == body
