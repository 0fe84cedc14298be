"""Bearer tokens: generated with enough entropy that a plain SHA-256 is a safe stored form."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ADMIN_PREFIX = "sva_"
CLIENT_PREFIX = "sv_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # 256 random bits need no slow hash: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
