"""WebSocket login messages, checked against the documented formulas written out here."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from app.exchanges import binance, bitget, bybit, cryptocom, gate, kraken, okx
from app.exchanges.base import Moment, RequestRefused
from app.exchanges.keys import signing_key

NOW = 1_700_000_000_123
ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)


def h256(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def key(
    adapter,
    secret: str = "S3CRET",
    passphrase: str | None = None,  # type: ignore[no-untyped-def]
    key_type: str = "hmac",
):
    return signing_key(adapter.spec, key_type, "KEY", secret, passphrase)


def test_okx() -> None:
    message = okx.SPEC.ws_login(key(okx.SPEC, passphrase="pw"), Moment(NOW), {})
    expected = base64.b64encode(h256("S3CRET", "1700000000GET/users/self/verify")).decode()
    assert message == {
        "op": "login",
        "args": [{"apiKey": "KEY", "passphrase": "pw", "timestamp": "1700000000", "sign": expected}],
    }


def test_bitget() -> None:
    message = bitget.SPEC.ws_login(key(bitget.SPEC, passphrase="pw"), Moment(NOW), {})
    assert message["args"][0]["sign"] == base64.b64encode(h256("S3CRET", "1700000000GET/user/verify")).decode()


def test_bybit() -> None:
    message = bybit.SPEC.ws_login(key(bybit.SPEC), Moment(NOW), {})
    expires = NOW + 10_000
    assert message == {"op": "auth", "args": ["KEY", expires, h256("S3CRET", f"GET/realtime{expires}").hex()]}


def test_cryptocom() -> None:
    message = cryptocom.SPEC.ws_login(key(cryptocom.SPEC), Moment(NOW), {})
    assert message["sig"] == h256("S3CRET", f"public/auth{NOW}KEY{NOW}").hex()
    assert (message["method"], message["nonce"]) == ("public/auth", NOW)


def test_gate_signs_one_channel() -> None:
    message = gate.SPEC.ws_login(key(gate.SPEC), Moment(NOW), {"channel": "spot.orders", "event": "subscribe"})
    expected = hmac.new(b"S3CRET", b"channel=spot.orders&event=subscribe&time=1700000000", hashlib.sha512).hexdigest()
    assert message["auth"] == {"method": "api_key", "KEY": "KEY", "SIGN": expected}
    with pytest.raises(RequestRefused, match="channel"):
        gate.SPEC.ws_login(key(gate.SPEC), Moment(NOW), {})


def test_binance_needs_ed25519() -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    message = binance.SPOT.ws_login(key(binance.SPOT, ED25519_PEM, key_type="ed25519"), Moment(NOW), {"id": "1"})
    public = load_pem_private_key(ED25519_PEM.encode(), None).public_key()
    public.verify(base64.b64decode(message["params"]["signature"]), f"apiKey=KEY&timestamp={NOW}".encode())
    assert message["method"] == "session.logon" and message["id"] == "1"
    with pytest.raises(RequestRefused, match="Ed25519"):
        binance.SPOT.ws_login(key(binance.SPOT), Moment(NOW), {})


def test_exchanges_without_signed_ws_login_say_so() -> None:
    with pytest.raises(RequestRefused):
        kraken.SPEC.ws_login(key(kraken.SPEC, base64.b64encode(b"k" * 64).decode()), Moment(NOW), {})
