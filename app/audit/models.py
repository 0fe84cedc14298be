"""One row per admin action and per proxied or signed call. Never holds a secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # BigInteger on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))  # "admin" | "client"
    actor: Mapped[str] = mapped_column(String(64), index=True)  # token name or client name
    action: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))  # never the query: it may carry a signature
    status: Mapped[int]
    latency_ms: Mapped[float] = mapped_column(Float)
    credential_id: Mapped[str | None] = mapped_column(String(36), index=True)
    credential_label: Mapped[str | None] = mapped_column(String(64))
    credential_version: Mapped[int | None]
    exchange: Mapped[str | None] = mapped_column(String(32))
