"""HmacKey's precomputed states give the same MACs as the standard library, for every key length."""

from __future__ import annotations

import hmac

import pytest

from app.exchanges.base import SigningKey
from app.exchanges.crypto import HmacKey

# Shorter than, equal to and longer than SHA-256's 64-byte and SHA-512's 128-byte blocks.
KEY_LENGTHS = (0, 1, 32, 63, 64, 65, 127, 128, 129, 300)
MESSAGES = (b"", b"2026-11-22T07:00:00.000ZGET/api/v5/account/balance", bytes(range(256)) * 9)


@pytest.mark.parametrize("length", KEY_LENGTHS)
def test_same_macs_as_the_standard_library(length: int) -> None:
    key = bytes((7 * i + 3) % 256 for i in range(length))
    hmac_key = HmacKey(key)
    for message in MESSAGES:
        assert hmac_key.sha256(message) == hmac.digest(key, message, "sha256")
        assert hmac_key.sha512(message) == hmac.digest(key, message, "sha512")
        assert hmac_key.sha256(message) == hmac_key.sha256(message)  # the stored states stay unused


def test_the_key_never_shows() -> None:
    secret = b"do-not-print-this-secret"
    signing_key = SigningKey(api_key="k", secret=secret.decode(), passphrase=None, key_type="hmac", hmac_key=secret)
    assert signing_key.hmac.sha256(b"m") == hmac.digest(secret, b"m", "sha256")
    assert "do-not-print" not in repr(signing_key) + repr(signing_key.hmac)
