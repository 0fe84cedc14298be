"""Every ORM model, imported in one place for alembic and the app."""

from app.admin.models import AdminToken
from app.audit.models import AuditEvent
from app.clients.models import Client, client_credentials
from app.credentials.models import Credential, CredentialVersion
from app.db import Base
from app.idempotency.models import IdempotencyRecord
from app.proxy.models import NonceCeiling
from app.vault.models import MasterKeyState

__all__ = ["AdminToken", "AuditEvent", "Base", "Client", "Credential", "CredentialVersion", "IdempotencyRecord",
           "MasterKeyState", "NonceCeiling", "client_credentials"]
