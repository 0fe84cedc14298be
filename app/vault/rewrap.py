"""Re-wrap every data key under the newest master key: resumable, one committed batch at a time.

Each row changes in a single UPDATE (wrapped key and master key id together), guarded by the id it
was read with, so a crash mid-batch leaves every row either fully old or fully new, and a re-run
simply continues with the rows still on an old key. Ciphertexts are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.credentials.models import CredentialVersion
from app.vault import envelope
from app.vault.keyring import KeyRing
from app.vault.repository import count_by_master_key, hold, sealing_key

log = logging.getLogger("signvault.vault")


class TargetRetired(Exception):
    """The key rows were being rewrapped under was retired meanwhile (another key was promoted)."""


@dataclass
class RewrapReport:
    rewrapped: int = 0
    remaining: int = 0
    target: str = ""


async def rewrap_all(
    sessionmaker: async_sessionmaker[AsyncSession],
    ring: KeyRing,
    batch_size: int = 100,
    after_row: Callable[[int], None] | None = None,  # a test hook to interrupt mid-batch
) -> RewrapReport:
    report = RewrapReport()
    async with sessionmaker() as session:
        target = await sealing_key(session, ring)
    primary = target.id
    while True:
        async with sessionmaker() as session, session.begin():
            # Held, as a seal holds its key, so the target cannot be retired under this batch.
            if (await hold(session, primary, exclusive=False)).retired_at is not None:
                raise TargetRetired(f"master key {primary} was retired while rows were being rewrapped under it; "
                                    "run rewrap again")
            rows = (await session.scalars(
                select(CredentialVersion)
                .where(CredentialVersion.master_key_id != primary)
                .order_by(CredentialVersion.credential_id, CredentialVersion.version)
                .limit(batch_size)
            )).all()
            if not rows:
                break
            for row in rows:
                sealed = envelope.Sealed(row.ciphertext, row.wrapped_key, row.master_key_id)
                fresh = envelope.rewrap(ring, sealed, row.credential_id, row.version, target)
                await session.execute(
                    update(CredentialVersion)
                    .where(CredentialVersion.credential_id == row.credential_id,
                           CredentialVersion.version == row.version,
                           CredentialVersion.master_key_id == row.master_key_id)
                    .values(wrapped_key=fresh.wrapped_key, master_key_id=fresh.master_key_id)
                    .execution_options(synchronize_session=False)
                )
                report.rewrapped += 1
                if after_row is not None:
                    after_row(report.rewrapped)
        log.info("rewrapped %d data keys so far", report.rewrapped)
    async with sessionmaker() as session:
        counts = await count_by_master_key(session)
    report.remaining = sum(n for key_id, n in counts.items() if key_id != primary)
    report.target = primary
    return report
