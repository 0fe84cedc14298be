"""Envelope encryption: round trip, fresh randomness, and refusal of every kind of tampering."""

from __future__ import annotations

import base64

import pytest

from app.vault import envelope
from app.vault.envelope import Sealed, VaultIntegrityError
from app.vault.keyring import KeyRing, parse_key

KEY_A = parse_key(base64.b64encode(b"a" * 32).decode(), "test")
KEY_B = parse_key(base64.b64encode(b"b" * 32).decode(), "test")
RING = KeyRing((KEY_A,))
SECRET = b'{"api_secret":"canary-secret-value"}'


def flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1:]


class TestRoundTrip:
    def test_open_returns_what_was_sealed(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        assert envelope.open_sealed(RING, sealed, "cred-1", 1) == SECRET
        assert sealed.master_key_id == KEY_A.id

    def test_plaintext_is_not_in_the_sealed_form(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        for blob in (sealed.ciphertext, sealed.wrapped_key):
            assert b"canary" not in blob
            assert b"canary" not in base64.b64encode(blob)

    def test_same_secret_twice_gives_different_nonces_and_ciphertexts(self) -> None:
        first = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        second = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        assert first.ciphertext[:12] != second.ciphertext[:12]
        assert first.ciphertext != second.ciphertext
        assert first.wrapped_key != second.wrapped_key


class TestTampering:
    @pytest.mark.parametrize("index", [0, 11, 12, -1])  # nonce start/end, body start, tag end
    def test_flipped_ciphertext_byte_is_refused(self, index: int) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        bad = Sealed(flip(sealed.ciphertext, index), sealed.wrapped_key, sealed.master_key_id)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(RING, bad, "cred-1", 1)

    @pytest.mark.parametrize("index", [0, 12, -1])
    def test_flipped_wrapped_key_byte_is_refused(self, index: int) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        bad = Sealed(sealed.ciphertext, flip(sealed.wrapped_key, index), sealed.master_key_id)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(RING, bad, "cred-1", 1)

    def test_truncated_blob_is_refused(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(RING, Sealed(sealed.ciphertext[:20], sealed.wrapped_key, KEY_A.id), "cred-1", 1)

    def test_row_copied_to_another_credential_is_refused(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-A", 1)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(RING, sealed, "cred-B", 1)

    def test_ciphertext_swapped_between_credentials_is_refused(self) -> None:
        a = envelope.seal(KEY_A, SECRET, "cred-A", 1)
        b = envelope.seal(KEY_A, b"other", "cred-B", 1)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(RING, Sealed(a.ciphertext, b.wrapped_key, b.master_key_id), "cred-B", 1)

    def test_old_version_replayed_as_new_version_is_refused(self) -> None:
        old = envelope.seal(KEY_A, SECRET, "cred-A", 1)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(RING, old, "cred-A", 2)

    def test_wrong_master_key_is_refused(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        impostor = Sealed(sealed.ciphertext, sealed.wrapped_key, KEY_B.id)
        with pytest.raises(VaultIntegrityError):
            envelope.open_sealed(KeyRing((KEY_B,)), impostor, "cred-1", 1)

    def test_master_key_missing_from_ring_is_named(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 1)
        with pytest.raises(VaultIntegrityError, match=KEY_A.id):
            envelope.open_sealed(KeyRing((KEY_B,)), sealed, "cred-1", 1)


class TestRewrap:
    def test_rewrap_moves_the_data_key_to_the_newest_master_key(self) -> None:
        sealed = envelope.seal(KEY_A, SECRET, "cred-1", 3)
        both = KeyRing((KEY_B, KEY_A))
        moved = envelope.rewrap(both, sealed, "cred-1", 3, KEY_B)
        assert moved.master_key_id == KEY_B.id
        assert moved.ciphertext == sealed.ciphertext
        assert envelope.open_sealed(KeyRing((KEY_B,)), moved, "cred-1", 3) == SECRET
