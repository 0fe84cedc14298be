"""What a bot's request loses before signvault signs it: the client's own authentication, the hop's
headers and whatever its Connection header names; and what is refused."""

from __future__ import annotations

import pytest

from app.exchanges.base import RequestRefused, UpstreamRequest
from app.exchanges.registry import get_adapter

BOT = {"user-agent": "python-requests/2.32.3", "accept": "*/*", "accept-encoding": "gzip, deflate",
       "connection": "keep-alive", "host": "signvault", "x-signvault-token": "sv_token",
       "ok-access-key": "placeholder", "ok-access-sign": "placeholder", "ok-access-timestamp": "t",
       "ok-access-passphrase": "placeholder", "content-type": "application/json"}


def stripped(headers: dict[str, str]) -> dict[str, str]:
    okx = get_adapter("okx")
    assert okx is not None
    return dict(okx.strip(UpstreamRequest("POST", "/api/v5/trade/order", body=b"{}", headers=headers)).headers)


def test_the_bots_auth_and_the_hops_headers_go_the_rest_stays() -> None:
    assert stripped(BOT) == {"user-agent": "python-requests/2.32.3", "accept": "*/*",
                             "content-type": "application/json"}


@pytest.mark.parametrize("connection", ["keep-alive, X-Hop", "X-Hop", "close,x-hop", "Upgrade, X-HOP "])
def test_headers_named_by_connection_go_too(connection: str) -> None:
    assert stripped({**BOT, "connection": connection, "x-hop": "1", "x-kept": "2"}).get("x-hop") is None
    assert stripped({**BOT, "connection": connection, "x-hop": "1", "x-kept": "2"})["x-kept"] == "2"


@pytest.mark.parametrize("connection", ["keep-alive", "Keep-Alive", "close"])
def test_a_plain_connection_header_names_nothing(connection: str) -> None:
    assert stripped({**BOT, "connection": connection, "x-kept": "2"})["x-kept"] == "2"


def test_a_non_ascii_value_is_refused_wherever_it_is() -> None:
    with pytest.raises(RequestRefused, match="ASCII"):
        stripped({**BOT, "x-note": "caf\xe9"})
    assert stripped({**BOT, "ok-access-key": "caf\xe9"})  # stripped before the check: it never goes out


# What ccxt attaches with placeholder keys, beyond the exchange's current scheme: Coinbase's legacy
# CB-ACCESS-* signature, and KuCoin's broker-partner signature over the placeholder key.
@pytest.mark.parametrize(("exchange", "attached"), [
    ("coinbase", {"authorization": "Bearer x", "cb-access-key": "k", "cb-access-sign": "s",
                  "cb-access-timestamp": "1", "cb-access-passphrase": "p"}),
    ("kucoin", {"kc-api-key": "k", "kc-api-sign": "s", "kc-api-timestamp": "1", "kc-api-passphrase": "p",
                "kc-api-key-version": "2", "kc-api-partner": "ccxt", "kc-api-partner-sign": "s",
                "kc-api-partner-verify": "true"}),
])
def test_placeholder_auth_from_ccxt_goes(exchange: str, attached: dict[str, str]) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    request = UpstreamRequest("GET", "/x", headers={"accept": "*/*", **attached})
    assert dict(adapter.strip(request).headers) == {"accept": "*/*"}


# Kraken signs and sends any body as a form, whatever the client labelled it: so its nonce is
# stripped, and a parameter given twice refused, there too.
@pytest.mark.parametrize("content_type", ["text/plain", "application/json", ""])
def test_kraken_strips_a_body_of_any_label_as_the_form_it_becomes(content_type: str) -> None:
    kraken = get_adapter("kraken")
    assert kraken is not None
    request = UpstreamRequest("POST", "/0/private/AddOrder", body=b"nonce=1&pair=XBTUSD&volume=1",
                              headers={"content-type": content_type} if content_type else {})
    assert kraken.strip(request).body == b"pair=XBTUSD&volume=1"
