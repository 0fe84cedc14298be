"""The alphabet tables the server, the exchange client and the guards check bytes against."""

from __future__ import annotations

import pytest

from app.http_syntax import NOT_TOKEN, TOKEN_BYTES, outside


@pytest.mark.parametrize("allowed", [b"", b"ab", TOKEN_BYTES, bytes(range(256))])
def test_a_table_marks_exactly_the_bytes_outside_the_alphabet(allowed: bytes) -> None:
    table = outside(allowed)
    for byte in range(256):
        assert (1 in bytes([byte]).translate(table)) is (byte not in allowed)
    assert 1 not in allowed.translate(table)


def test_tokens_pass_and_separators_do_not() -> None:
    assert 1 not in b"content-typex-mbx-used-weight-1m!#$%&'*+.^_`|~09AZaz".translate(NOT_TOKEN)
    for name in (b"x bad", b"x:bad", b"x(y)", b'x"y', b"x/y", b"x\x00", b"caf\xc3\xa9"):
        assert 1 in name.translate(NOT_TOKEN)
