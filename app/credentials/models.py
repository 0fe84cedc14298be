"""A credential (stable id and label bots refer to) and its versions (the sealed key material)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("exchange", "label"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    exchange: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(16))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    rate_limit: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    # Rotation swaps this pointer in one UPDATE guarded by its old value: the atomic promotion.
    active_version: Mapped[int]
    key_type: Mapped[str] = mapped_column(String(16))
    api_key_hint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The last connection check: its status in the exchange's terms, and what the key may do there.
    check_status: Mapped[str | None] = mapped_column(String(32))
    check_detail: Mapped[str | None] = mapped_column(String(300))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exchange_permissions: Mapped[dict[str, bool | None] | None] = mapped_column(JSON)

    versions: Mapped[list[CredentialVersion]] = relationship(
        back_populates="credential", lazy="raise", cascade="all, delete-orphan", passive_deletes=True,
        order_by="CredentialVersion.version",
    )


class CredentialVersion(Base):
    __tablename__ = "credential_versions"

    credential_id: Mapped[str] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    key_type: Mapped[str] = mapped_column(String(16))
    api_key_hint: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    credential: Mapped[Credential] = relationship(back_populates="versions", lazy="raise")
