"""Key material: derive the public key of a pasted private key, and make keys for tests."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

_PEM = serialization.Encoding.PEM
_NONE = serialization.NoEncryption()


def _pem_bytes(secret: str) -> bytes:
    text = secret.strip()
    if "\\n" in text and "\n" not in text:  # pasted from a JSON file with escaped newlines
        text = text.replace("\\n", "\n")
    return text.encode()


@lru_cache(maxsize=256)
def private_key_from_pem(secret: str) -> Any:
    """Load an unencrypted PEM private key (PKCS#8 or SEC1/PKCS#1 'traditional')."""
    return serialization.load_pem_private_key(_pem_bytes(secret), password=None)


@lru_cache(maxsize=256)
def ed25519_private_key(secret: str) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 key given as PEM, or as base64 of 32 bytes (seed) or 64 bytes (seed || public)."""
    if "-----BEGIN" in secret:
        key = private_key_from_pem(secret)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError("PEM is not an Ed25519 private key")
        return key
    try:
        raw = base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Ed25519 secret is neither PEM nor base64") from exc
    if len(raw) not in (32, 64):
        raise ValueError(f"Ed25519 secret decodes to {len(raw)} bytes, expected 32 or 64")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64:
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if public != raw[32:]:
            raise ValueError("Ed25519 secret: the last 32 bytes are not the seed's public key")
    return key


def public_key(secret: str, key_type: str) -> Any:
    """The public key of the private key a user pasted as `secret`, for `key_type`."""
    if key_type == "ed25519":
        return ed25519_private_key(secret).public_key()
    key = private_key_from_pem(secret)
    if key_type == "rsa" and not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("secret is not an RSA private key")
    if key_type == "ecdsa" and not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("secret is not an EC private key")
    return key.public_key()


# -- key generation for tests -------------------------------------------------------------------


def new_ed25519_pem() -> str:
    """A fresh Ed25519 private key as PKCS#8 PEM (Binance's format)."""
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NONE).decode()


def new_ed25519_b64(with_public: bool = True) -> str:
    """A fresh Ed25519 key as Coinbase hands it out: base64 of seed||public (64 bytes) or seed (32)."""
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, _NONE)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + public if with_public else seed).decode()


@lru_cache(maxsize=4)
def new_rsa_pem(bits: int = 2048, index: int = 0) -> str:
    """An RSA private key as PKCS#8 PEM (cached per (bits, index): RSA generation is slow)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NONE).decode()


def new_ec_pem() -> str:
    """A fresh ECDSA P-256 private key as SEC1 PEM ("BEGIN EC PRIVATE KEY", Coinbase's format)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(_PEM, serialization.PrivateFormat.TraditionalOpenSSL, _NONE).decode()
