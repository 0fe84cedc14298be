"""The vault as the rest of the app sees it: seal and open a credential's secrets, or fail closed."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.errors import ProblemError, ServiceUnavailable
from app.settings import Settings
from app.vault import envelope, repository
from app.vault.keyring import KeyRing, KeyRingError, load_keyring
from app.vault.repository import count_by_master_key

log = logging.getLogger("signvault.vault")


class VaultUnavailable(ServiceUnavailable):
    slug, title = "vault-unavailable", "The vault has no usable master key"


class VaultCorrupt(ProblemError):
    # Generic on purpose: the client learns nothing about which check failed; the log says which.
    status, slug, title = 500, "vault-error", "A stored credential could not be decrypted"


@dataclass(frozen=True)
class SecretMaterial:
    """A credential's decrypted secrets. Masked in repr so a stray log line cannot show them."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        doc = {"api_key": self.api_key, "api_secret": self.api_secret, "passphrase": self.passphrase}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> SecretMaterial:
        doc = json.loads(raw)
        return cls(doc["api_key"], doc["api_secret"], doc.get("passphrase"))


class Vault:
    def __init__(self, ring: KeyRing | None, error: str | None = None) -> None:
        self.ring = ring
        self.error = error

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        try:
            return cls(load_keyring(settings))
        except KeyRingError as exc:
            log.error("vault disabled, refusing to store or sign: %s", exc)
            return cls(None, str(exc))

    async def check_rows_covered(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Fail closed when stored rows were sealed under keys this ring lacks (a wrong master key)."""
        if self.ring is None:
            return
        async with sessionmaker() as session:
            in_use = await count_by_master_key(session)
        missing = sorted(set(in_use) - set(self.ring.ids))
        if missing:
            self.error = (f"stored credentials are sealed under master keys not configured here: "
                          f"{', '.join(missing)} (configured: {', '.join(self.ring.ids)})")
            log.error("vault disabled, refusing to store or sign: %s", self.error)
            self.ring = None

    def require_ring(self) -> KeyRing:
        if self.ring is None:
            raise VaultUnavailable(self.error)
        return self.ring

    async def seal(self, session: AsyncSession, material: SecretMaterial, credential_id: str,
                   version: int) -> envelope.Sealed:
        ring = self.require_ring()
        for _ in range(3):
            master = await repository.sealing_key(session, ring)
            # Held until this row commits, so the key cannot be retired while it needs it.
            if (await repository.hold(session, master.id, exclusive=False)).retired_at is None:
                return envelope.seal(master, material.to_bytes(), credential_id, version)
        raise VaultUnavailable("the sealing master key kept changing; try again")

    def open(self, sealed: envelope.Sealed, credential_id: str, version: int) -> SecretMaterial:
        try:
            return SecretMaterial.from_bytes(
                envelope.open_sealed(self.require_ring(), sealed, credential_id, version))
        except envelope.VaultIntegrityError as exc:
            log.error("vault integrity failure on credential %s version %s: %s", credential_id, version, exc)
            metrics.VAULT_ERRORS.inc()
            raise VaultCorrupt() from None
