"""The path normaliser: only exchange-shaped paths pass, and what passes stays a plain path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.proxy.paths import UnsafePath, exchange_path, exchange_query


@pytest.mark.parametrize("raw", ["/api/v3/order", "/0/private/AddOrder", "/exchange/v1/private/get-order-detail",
                                 "/api/v5/account/balance", "/v2/accounts/7c9a-2f/transactions"])
def test_exchange_paths_pass_unchanged(raw: str) -> None:
    assert exchange_path(raw) == raw


def test_an_encoded_slash_reads_as_a_slash() -> None:
    # Generated clients percent-encode a {path} parameter whole.
    assert exchange_path("/api%2Fv5%2Faccount%2fbalance") == "/api/v5/account/balance"


@pytest.mark.parametrize("raw", ["", "/", "//evil.example/x", "/a//b", "/a/../b", "/./a", "/a/%2e%2e", "%2F%2Fevil",
                                 "/a%2F..%2Fb", "/https:%2F%2Fevil",
                                 "/https:/evil", "/@evil", "/a\\b", "/a b", "/a\x00", "/é", "/a?b", "/a#b"])
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(UnsafePath):
        exchange_path(raw)


@given(st.text(max_size=300))
def test_whatever_passes_is_a_plain_relative_path(raw: str) -> None:
    try:
        path = exchange_path(raw)
    except UnsafePath:
        return
    assert path.startswith("/") and not path.startswith("//")
    assert all(segment not in ("", ".", "..") for segment in path[1:].split("/"))
    assert all(c.isascii() and (c.isalnum() or c in "/_.~-") for c in path)


@given(st.binary(max_size=500))
def test_queries_are_always_printable_ascii(raw: bytes) -> None:
    query = exchange_query(raw)
    assert all(0x21 <= ord(c) <= 0x7E for c in query)
