"""Checks that pasted key material is something the exchange's signing scheme can use."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app.exchanges.base import ExchangeSpec, KeyType, SigningKey
from app.exchanges.crypto import load_private_key

# API keys and HMAC secrets are printable ASCII at every exchange; anything else is a paste accident
# (a space, a tab, a no-break or zero-width space) that would otherwise surface as days of 401s.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x21-\x7e]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PEM_HEADER = "-----BEGIN"


def has_unprintable(value: str) -> bool:
    return _NOT_PRINTABLE_ASCII.search(value) is not None


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def normalise_secret(secret: str) -> str:
    """Trim pasted whitespace; turn the literal `\\n` of a PEM copied out of JSON into newlines."""
    secret = secret.strip()
    if secret.startswith(_PEM_HEADER) and "\n" not in secret and "\\n" in secret:
        secret = secret.replace("\\n", "\n")
    return secret


def secret_problem(spec: ExchangeSpec, key_type: KeyType, secret: str) -> str | None:
    """Why `secret` cannot sign for this exchange and key type, or None when it can."""
    if key_type == "hmac":
        if has_unprintable(secret):
            return "contains whitespace, control or non-ASCII characters"
        if spec.secret_encoding == "base64" and not _decodes_as_base64(secret):  # nosec B105
            return f"{spec.name} secrets are base64; this one does not decode"
        return None
    if key_type == "ed25519" and not secret.startswith(_PEM_HEADER):
        # Coinbase CDP hands Ed25519 keys out as base64 of the seed (32 bytes) or seed||public (64).
        raw = _b64decode(secret)
        return None if raw is not None and len(raw) in (32, 64) else "not an Ed25519 key (PEM or base64 seed)"
    return _pem_problem(key_type, secret)


def _pem_problem(key_type: KeyType, secret: str) -> str | None:
    if not secret.startswith(_PEM_HEADER):
        return f"a {key_type} key must be a PEM private key"
    try:
        key = serialization.load_pem_private_key(secret.encode(), password=None)
    except TypeError:
        return "encrypted private keys are not supported; export it without a password"
    except ValueError:
        return "not a readable PEM private key"
    if key_type == "ed25519" and not isinstance(key, ed25519.Ed25519PrivateKey):
        return "the PEM key is not an Ed25519 key"
    if key_type == "rsa":
        if not isinstance(key, rsa.RSAPrivateKey):
            return "the PEM key is not an RSA key"
        if key.key_size < 2048:
            return "RSA keys must be at least 2048 bits"
    if key_type == "ecdsa" and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        return "the PEM key is not an ECDSA P-256 key"
    return None


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decodes_as_base64(value: str) -> bool:
    raw = _b64decode(value)
    return raw is not None and len(raw) > 0


def signing_key(spec: ExchangeSpec, key_type: KeyType, api_key: str, secret: str,
                passphrase: str | None) -> SigningKey:
    """Decode a stored credential into what the signer uses: HMAC key bytes or a private key object."""
    hmac_key = b""
    if key_type == "hmac":
        hmac_key = base64.b64decode(secret) if spec.secret_encoding == "base64" else secret.encode()  # nosec B105
    return SigningKey(api_key=api_key, secret=secret, passphrase=passphrase, key_type=key_type,
                      hmac_key=hmac_key, private_key=load_private_key(key_type, secret))
