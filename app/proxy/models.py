"""The highest nonce each exchange API key has used: a fresh sequence starts above it (app/proxy/nonce_ceilings.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class NonceCeiling(Base):
    __tablename__ = "nonce_ceilings"

    # The nonce scope: the exchange's id and the API key's SHA-256 (app/proxy/service.py), never the key.
    scope: Mapped[str] = mapped_column(String(128), primary_key=True)
    ceiling: Mapped[int] = mapped_column(BigInteger)  # the highest nonce written (behind the calls, ≤ 0.1 s late)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
