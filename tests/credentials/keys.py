"""Key material generated for tests: PEM private keys of each type the exchanges use."""

from __future__ import annotations

import base64
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PKCS8 = serialization.PrivateFormat.PKCS8
PEM = serialization.Encoding.PEM
NONE = serialization.NoEncryption()


def ed25519_pem() -> str:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(PEM, PKCS8, NONE).decode()


@cache
def rsa_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(PEM, PKCS8, NONE).decode()


def ec_pem(curve: ec.EllipticCurve | None = None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL, NONE).decode()


def encrypted_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"pw")).decode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
