"""First start: make sure some admin token exists, and say where a development one was written."""

from __future__ import annotations

import logging
import os
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin.models import AdminToken
from app.settings import Settings
from app.tokens import ADMIN_PREFIX, hash_token, new_token

log = logging.getLogger("signvault")


async def ensure_admin_token(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Without SIGNVAULT_ADMIN_TOKEN and with no token stored, create one and write it to a 0600 file."""
    if settings.admin_token is not None:
        return
    async with sessionmaker() as session, session.begin():
        active = await session.scalar(
            select(func.count()).select_from(AdminToken).where(AdminToken.revoked_at.is_(None)))
        if active:
            return
        token = new_token(ADMIN_PREFIX)
        path = settings.dev_admin_token_path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        session.add(AdminToken(id=str(uuid.uuid4()), name="bootstrap", token_hash=hash_token(token)))
    log.warning("created the first admin token; it is in %s (mode 0600)", path.resolve())
