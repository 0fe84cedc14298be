"""Envelope encryption of one credential version: AES-256-GCM data key, wrapped by a master key.

Each credential version gets a fresh random data key, so no AES-GCM key ever approaches its
random-nonce limit. The credential id and version are bound in as associated data: a ciphertext or
wrapped key copied into another row fails authentication instead of decrypting as that row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.vault.keyring import KeyRing, MasterKey

NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class VaultIntegrityError(Exception):
    """A ciphertext failed authentication or references a master key the ring does not hold."""


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes  # nonce || AES-GCM(data key, plaintext)
    wrapped_key: bytes  # nonce || AES-GCM(master key, data key)
    master_key_id: str


def _context(credential_id: str, version: int) -> bytes:
    return f"signvault/v1/credential/{credential_id}/{version}".encode()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise InvalidTag
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def wrap_data_key(master: MasterKey, data_key: bytes, credential_id: str, version: int) -> bytes:
    return _encrypt(master.material, data_key, _context(credential_id, version) + b"/data-key")


def unwrap_data_key(ring: KeyRing, sealed: Sealed, credential_id: str, version: int) -> bytes:
    master = ring.get(sealed.master_key_id)
    if master is None:
        raise VaultIntegrityError(f"master key {sealed.master_key_id} is not in the key ring")
    try:
        return _decrypt(master.material, sealed.wrapped_key, _context(credential_id, version) + b"/data-key")
    except InvalidTag:
        raise VaultIntegrityError("wrapped data key failed authentication") from None


def seal(master: MasterKey, plaintext: bytes, credential_id: str, version: int) -> Sealed:
    data_key = secrets.token_bytes(DATA_KEY_BYTES)
    ciphertext = _encrypt(data_key, plaintext, _context(credential_id, version))
    wrapped = wrap_data_key(master, data_key, credential_id, version)
    return Sealed(ciphertext, wrapped, master.id)


def open_sealed(ring: KeyRing, sealed: Sealed, credential_id: str, version: int) -> bytes:
    data_key = unwrap_data_key(ring, sealed, credential_id, version)
    try:
        return _decrypt(data_key, sealed.ciphertext, _context(credential_id, version))
    except InvalidTag:
        raise VaultIntegrityError("ciphertext failed authentication") from None


def rewrap(ring: KeyRing, sealed: Sealed, credential_id: str, version: int, target: MasterKey) -> Sealed:
    """Re-wrap the data key under `target`; the ciphertext itself is untouched."""
    data_key = unwrap_data_key(ring, sealed, credential_id, version)
    return Sealed(sealed.ciphertext, wrap_data_key(target, data_key, credential_id, version), target.id)
