"""Master keys as the cluster knows them: which one seals new data keys, and which are retired.

Key material never lives here, only fingerprint ids. Promotion is a row, not a configuration change,
so every replica switches to the new key at once, without a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class MasterKeyState(Base):
    __tablename__ = "vault_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the key's fingerprint id
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
