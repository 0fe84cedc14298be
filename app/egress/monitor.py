"""Checks, through the egress path itself, which IP the outside world sees, against the whitelisted one."""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from app import metrics
from app.db import utcnow
from app.settings import Settings

log = logging.getLogger("signvault.egress")


@dataclass(frozen=True)
class EgressCheck:
    observed_ip: str | None
    matches: bool | None  # None: nothing to compare with, or the check itself failed
    error: str | None
    checked_at: datetime


def describe_mode(settings: Settings) -> tuple[str, str | None]:
    """("proxy", "host:port") | ("source_ip", "10.0.0.5") | ("direct", None); never proxy credentials."""
    if settings.egress_proxy is not None:
        parts = urlsplit(settings.egress_proxy.get_secret_value())
        return "proxy", f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")
    if settings.egress_source_ip:
        return "source_ip", settings.egress_source_ip
    return "direct", None


def _parse_ip(body: bytes) -> str:
    text = body.decode("ascii", "replace").strip()
    if text.startswith("{"):
        text = str(json.loads(text).get("ip", ""))
    return str(ipaddress.ip_address(text))


class EgressMonitor:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.last: EgressCheck | None = None

    @property
    def expected(self) -> list[str]:
        return list(self.settings.egress_ips)

    async def check(self) -> EgressCheck:
        url = self.settings.egress_echo_url
        if not url:
            return self._record(EgressCheck(None, None, "no SIGNVAULT_EGRESS_ECHO_URL configured", utcnow()))
        try:
            response = await self.http.get(url)
            response.raise_for_status()
            observed = _parse_ip(response.content)
        except (httpx.HTTPError, ValueError) as exc:
            return self._record(EgressCheck(None, None, f"echo check failed: {type(exc).__name__}", utcnow()))
        matches = observed in self.expected if self.expected else None
        return self._record(EgressCheck(observed, matches, None, utcnow()))

    def _record(self, check: EgressCheck) -> EgressCheck:
        self.last = check
        metrics.EGRESS_MISMATCH.set(1 if check.matches is False else 0)
        if check.matches is False:
            log.error("EGRESS IP DRIFTED: exchanges now see %s, but the whitelisted IP is %s",
                      check.observed_ip, ", ".join(self.expected))
        return check

    @property
    def drifted(self) -> bool:
        return self.last is not None and self.last.matches is False
