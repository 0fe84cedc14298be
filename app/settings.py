"""Configuration, read once from `SIGNVAULT_*` environment variables."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_FILE = "signvault.db"
MASTER_KEY_FILE = "signvault.master.key"
ADMIN_TOKEN_FILE = "signvault.admin-token"  # nosec B105


class Settings(BaseSettings):
    """Every knob of a deployment; the defaults give a working single-node development setup."""

    # hide_input_in_errors: a refused value may be a secret (a short admin token, a key).
    model_config = SettingsConfigDict(env_prefix="SIGNVAULT_", extra="ignore", hide_input_in_errors=True)

    data_dir: Path = Field(default=Path("."), description="Where the SQLite file and dev key files live.")
    # repr=False: URLs may carry passwords, and a repr of the settings must not show them.
    database_url: str | None = Field(default=None, repr=False,
                                     description="SQLAlchemy async URL; SQLite in data_dir if unset.")
    database_timeout_s: float = Field(
        default=5.0, gt=0, le=300,
        description="PostgreSQL: connecting, waiting for a pooled connection, and each statement; then 503.")

    # Master keys: base64 of 32 bytes each. One of these, or none for a generated development key.
    master_key: SecretStr | None = None
    master_keys: SecretStr | None = Field(default=None, description="Comma-separated, newest first.")
    master_key_file: Path | None = Field(default=None, description="One base64 key per line, newest first.")

    admin_token: SecretStr | None = Field(default=None, min_length=16, description="At least 16 characters.")

    exchange_urls: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"exchange id": "base URL"} replacing the built-in URLs (simulators, gateways).')
    upstream_client: Literal["http1", "httpx"] = Field(
        default="http1", description="The exchange-facing client: http1 is signvault's own; httpx for respx tests.")
    upstream_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Per request to an exchange.")
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body accepted (413 above).")
    redis_url: str | None = Field(default=None, repr=False,
                                  description="Shares limits, cooldowns and nonces across replicas.")
    redis_prefix: str = "signvault:"
    limits_on_redis_error: Literal["closed", "local"] = Field(
        default="closed", description="closed: trading gets 503 while Redis is away; local: a local share.")
    replicas: int = Field(default=1, ge=1, description="How many replicas share the limits (for local shares).")

    # Egress: how exchange traffic leaves, so ops can whitelist one fixed IP at every exchange.
    egress_proxy: SecretStr | None = Field(
        default=None, description="http(s)://[user:pass@]host:port of a forward proxy on the static-IP host.")
    egress_source_ip: str | None = Field(default=None, description="Local address outgoing sockets bind to.")
    egress_ips: list[str] = Field(default_factory=list, description="The IP(s) exchanges must see (JSON list).")
    egress_echo_url: str | None = Field(
        default="https://api.ipify.org", description="Answers with the caller's IP; empty disables the check.")
    egress_check_interval_s: float = Field(default=300.0, ge=0, description="0 disables periodic checks.")
    refuse_withdraw_keys: bool = Field(default=False, description="Refuse keys whose withdrawals are enabled.")
    check_interval_s: float = Field(default=0.0, ge=0, description="Check every credential this often; 0: never.")
    busy_poll: bool = Field(
        default=False, description="Spin the event loop instead of sleeping: lower latency, one core always busy.")

    host: str = "127.0.0.1"
    port: int = 8000
    docs_enabled: bool = Field(default=True, description="Serve /docs, /redoc and /openapi.json.")
    auto_migrate: bool = Field(default=True, description="Apply alembic migrations on start.")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(default="json", description="json: one object per line.")

    @field_validator("exchange_urls")
    @classmethod
    def _check_exchange_urls(cls, urls: dict[str, str]) -> dict[str, str]:
        # Every byte signed goes to these URLs: plain origins only, no credentials, query or fragment.
        for exchange, url in urls.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password \
                    or parts.query or parts.fragment:
                raise ValueError(f"{exchange}: must be an http(s) URL with no user info, query or fragment")
        return urls

    @field_validator("egress_source_ip")
    @classmethod
    def _check_source_ip(cls, value: str | None) -> str | None:
        if value:
            ipaddress.ip_address(value)  # ValueError names the field
        return value or None

    @field_validator("egress_ips")
    @classmethod
    def _check_egress_ips(cls, values: list[str]) -> list[str]:
        return [str(ipaddress.ip_address(v)) for v in values]

    @model_validator(mode="after")
    def _one_egress_path(self) -> Settings:
        if self.egress_proxy is not None and self.egress_source_ip:
            raise ValueError("set SIGNVAULT_EGRESS_PROXY or SIGNVAULT_EGRESS_SOURCE_IP, not both")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def master_key_configured(self) -> bool:
        return bool(self.master_key or self.master_keys or self.master_key_file)

    @property
    def dev_master_key_path(self) -> Path:
        return self.data_dir / MASTER_KEY_FILE

    @property
    def dev_admin_token_path(self) -> Path:
        return self.data_dir / ADMIN_TOKEN_FILE
