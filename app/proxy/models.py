"""How far each exchange API key's nonces may have gone: a restart starts above it (app/proxy/nonces.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class NonceCeiling(Base):
    __tablename__ = "nonce_ceilings"

    # The nonce scope: the exchange's id and the API key's SHA-256 (app/proxy/service.py), never the key.
    scope: Mapped[str] = mapped_column(String(128), primary_key=True)
    ceiling: Mapped[int] = mapped_column(BigInteger)  # no nonce issued so far is above it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
