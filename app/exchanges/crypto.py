"""Signing primitives shared by the adapters: HMAC, asymmetric signatures, compact JWTs."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


# hmac.digest: OpenSSL's one-shot HMAC, without building an HMAC object per signature.
def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def hmac_sha512(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha512")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def passphrase_login(api_key: str, hmac_key: bytes, passphrase: str | None, now_ms: int,
                     verify_path: str) -> dict[str, Any]:
    """The WebSocket login OKX and Bitget share: base64 HMAC of seconds + GET + a verify path."""
    timestamp = str(now_ms // 1000)
    sign = b64(hmac_sha256(hmac_key, f"{timestamp}GET{verify_path}".encode()))
    return {"op": "login", "args": [{"apiKey": api_key, "passphrase": passphrase or "", "timestamp": timestamp,
                                     "sign": sign}]}


def load_private_key(key_type: str, secret: str) -> Any:
    """The private key object for an asymmetric key type; None for HMAC."""
    if key_type == "hmac":
        return None
    if secret.startswith("-----BEGIN"):
        return serialization.load_pem_private_key(secret.encode(), password=None)
    # Coinbase CDP Ed25519 keys: base64 of the 32-byte seed, or seed || public key.
    return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(secret)[:32])


def sign_asymmetric(private_key: Any, message: bytes) -> bytes:
    """Ed25519 (pure, no pre-hash) or RSA PKCS#1 v1.5 over SHA-256, as Binance and Bitget use them."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(message)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError(f"unsupported key {type(private_key).__name__}")


def jwt(private_key: Any, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A compact JWS: ES256 with the raw r||s signature JOSE wants (not DER), or EdDSA."""
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)).encode()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        signature = private_key.sign(signing_input)
    else:
        raise TypeError(f"unsupported JWT key {type(private_key).__name__}")
    return signing_input.decode() + "." + b64url(signature)
