"""The master key ring: versioned 256-bit keys, newest first, each known by a fingerprint id."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import Settings

log = logging.getLogger("signvault.vault")

KEY_BYTES = 32


class KeyRingError(Exception):
    """The master key configuration is unusable. Messages name the source, never key material."""


@dataclass(frozen=True)
class MasterKey:
    id: str
    material: bytes = field(repr=False)


def fingerprint(material: bytes) -> str:
    """A stable id derived from the key, so every replica names the same key the same way.

    A wrong key then shows up as an unknown id instead of a decryption failure on every row.
    """
    digest = hmac.new(material, b"signvault master key id", hashlib.sha256).hexdigest()
    return f"mk_{digest[:16]}"


def parse_key(encoded: str, source: str) -> MasterKey:
    try:
        material = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"{source}: not valid base64") from None
    if len(material) != KEY_BYTES:
        raise KeyRingError(f"{source}: must decode to {KEY_BYTES} bytes, got {len(material)}")
    return MasterKey(fingerprint(material), material)


@dataclass(frozen=True)
class KeyRing:
    """Newest key first: it wraps every new data key; the rest only unwrap until rewrapped."""

    keys: tuple[MasterKey, ...]
    generated: bool = False  # a development key signvault created itself

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingError("no master key configured")
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyRingError("the same master key is listed twice")

    @property
    def primary(self) -> MasterKey:
        return self.keys[0]

    @property
    def ids(self) -> list[str]:
        return [k.id for k in self.keys]

    def get(self, key_id: str) -> MasterKey | None:
        return next((k for k in self.keys if k.id == key_id), None)


def _parse_many(text: str, source: str) -> tuple[MasterKey, ...]:
    entries = [e for e in text.replace("\n", ",").split(",") if e.strip()]
    return tuple(parse_key(e, f"{source} entry {i + 1}") for i, e in enumerate(entries))


def load_keyring(settings: Settings) -> KeyRing:
    """Build the ring from settings; with nothing configured on SQLite, create a development key."""
    if settings.master_keys is not None:
        return KeyRing(_parse_many(settings.master_keys.get_secret_value(), "SIGNVAULT_MASTER_KEYS"))
    if settings.master_key is not None:
        return KeyRing((parse_key(settings.master_key.get_secret_value(), "SIGNVAULT_MASTER_KEY"),))
    if settings.master_key_file is not None:
        # Named, never shown: a key pasted into the variable instead of its file's path would otherwise
        # reach the log, the CLI's error and /readyz in "cannot read <it>".
        return KeyRing(_read_key_file(settings.master_key_file, "SIGNVAULT_MASTER_KEY_FILE", shown="the file it names"))
    if not settings.uses_sqlite:
        # Replicas sharing a database must share a key; a generated one per machine would be a trap.
        raise KeyRingError("an external database needs SIGNVAULT_MASTER_KEY, _KEYS or _KEY_FILE")
    path = settings.dev_master_key_path
    if path.exists():
        return KeyRing(_read_key_file(path, str(path)), generated=True)
    _create_key_file(path)
    return KeyRing(_read_key_file(path, str(path)), generated=True)


def _read_key_file(path: Path, source: str, shown: str | None = None) -> tuple[MasterKey, ...]:
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyRingError(f"{source}: cannot read {shown or path} ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("master key file %s is readable by group or others; chmod 600 it", path)
    return _parse_many(text, source)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(encoded + "\n")
