"""Who may call `/admin/*`: a bearer admin token, from SIGNVAULT_ADMIN_TOKEN or the admin_tokens table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from app.admin.models import AdminToken
from app.audit.context import start_audit
from app.errors import NotAuthenticated
from app.tokens import hash_token, same_hash

admin_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="An admin token (`sva_…`): from SIGNVAULT_ADMIN_TOKEN or created on first start.",
)

# The name audit rows show for the environment-configured token; not a token itself.
ENV_TOKEN_NAME = "env:SIGNVAULT_ADMIN_TOKEN"  # nosec B105


@dataclass(frozen=True)
class Admin:
    name: str


async def require_admin(
    request: Request,
    presented: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> Admin:
    if presented is None:
        raise NotAuthenticated("an admin bearer token is required")
    digest = hash_token(presented.credentials)
    env_hash: str | None = request.app.state.admin_token_hash
    if env_hash is not None and same_hash(digest, env_hash):
        admin = Admin(ENV_TOKEN_NAME)
    else:
        # A short read-only session: the route's own transaction must not start (and, on SQLite,
        # take the write lock) before the route decides to, e.g. after asking an exchange something.
        async with request.app.state.readonly_sessionmaker() as session:
            row = await session.scalar(
                select(AdminToken).where(AdminToken.token_hash == digest, AdminToken.revoked_at.is_(None)))
        if row is None or not same_hash(row.token_hash, digest):
            raise NotAuthenticated("the admin token is not valid")
        admin = Admin(row.name)
    start_audit(request.scope, "admin", admin.name)
    return admin


AdminDep = Annotated[Admin, Depends(require_admin)]
