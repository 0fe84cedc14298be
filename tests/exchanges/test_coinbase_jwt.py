"""Coinbase Advanced JWTs: verified with the public key (ES256 is not deterministic, so no vectors)."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from app.exchanges import coinbase
from app.exchanges.base import Moment, UpstreamRequest
from app.exchanges.keys import signing_key
from tests.credentials.keys import ec_pem

KEY_NAME = "organizations/org-1/apiKeys/key-1"


def unb64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def signed_token(secret: str, key_type: str) -> str:
    key = signing_key(coinbase.SPEC.spec, key_type, KEY_NAME, secret, None)  # type: ignore[arg-type]
    request = UpstreamRequest("POST", "/api/v3/brokerage/orders", query="x=1", host="api.coinbase.com")
    signed = coinbase.SPEC.sign(request, key, Moment(1_700_000_000_500))
    return signed.headers["authorization"].removeprefix("Bearer ")


class TestJwt:
    def test_es256_verifies_with_the_public_key_and_carries_the_claims(self) -> None:
        pem = ec_pem()
        token = signed_token(pem, "ecdsa")
        header_b64, claims_b64, signature_b64 = token.split(".")
        header, claims = json.loads(unb64url(header_b64)), json.loads(unb64url(claims_b64))
        assert header["alg"] == "ES256" and header["kid"] == KEY_NAME and len(header["nonce"]) == 32
        assert claims == {"sub": KEY_NAME, "iss": "cdp", "nbf": 1_700_000_000, "exp": 1_700_000_120,
                          "uri": "POST api.coinbase.com/api/v3/brokerage/orders"}
        raw = unb64url(signature_b64)
        assert len(raw) == 64  # JOSE r||s, not DER
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        private = signing_key(coinbase.SPEC.spec, "ecdsa", KEY_NAME, pem, None).private_key
        private.public_key().verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))

    @pytest.mark.parametrize("length", [32, 64])
    def test_ed25519_from_a_base64_seed(self, length: int) -> None:
        secret = base64.b64encode(os.urandom(length)).decode()
        token = signed_token(secret, "ed25519")
        header_b64, claims_b64, signature_b64 = token.split(".")
        assert json.loads(unb64url(header_b64))["alg"] == "EdDSA"
        private = signing_key(coinbase.SPEC.spec, "ed25519", KEY_NAME, secret, None).private_key
        private.public_key().verify(unb64url(signature_b64), f"{header_b64}.{claims_b64}".encode())

    def test_every_request_gets_a_fresh_nonce(self) -> None:
        pem = ec_pem()
        assert signed_token(pem, "ecdsa").split(".")[0] != signed_token(pem, "ecdsa").split(".")[0]
